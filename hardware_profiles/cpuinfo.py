"""What this machine's CPU is: ``/proc/cpuinfo`` and the cpufreq sysfs, read under a root.

The root is ``/`` unless ``$ETAMETER_HOST_ROOT`` names another: tests and CI point it at a
fake tree (an unknown CPU, no powercap) so that nothing depends on the machine they run on.

x86 identifies itself by ``vendor_id``, ``cpu family`` and ``model``; Arm by ``CPU implementer``
and ``CPU part`` (its ``Features`` line stands in for x86's ``flags``). Apple Silicon under
macOS has no ``/proc/cpuinfo``: there the brand string and core counts come from ``sysctl``,
through a runner that tests replace with a fake.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HOST_ROOT_ENV = "ETAMETER_HOST_ROOT"

#: ``sysctl`` keys for Apple Silicon and the cpuinfo-style flag each one sets when it is 1.
APPLE_FEATURE_FLAGS = {"hw.optional.arm.FEAT_DotProd": "asimddp",
                       "hw.optional.arm.FEAT_BF16": "bf16",
                       "hw.optional.arm.FEAT_I8MM": "i8mm",
                       "hw.optional.arm.FEAT_SME": "sme"}

#: Facts no CPU can show: a clock at or below zero or above this (the overclocking record is
#: below 9 GHz), and more logical CPUs than Linux can address (NR_CPUS is at most 8192).
MAX_CPU_HZ = 10e9
MAX_CPUS = 8192

#: A runner: takes a sysctl name, returns its value as text, or None when it has none.
SysctlRunner = Callable[[str], "str | None"]


def host_root() -> Path:
    """Where ``/proc`` and ``/sys`` are read: ``$ETAMETER_HOST_ROOT`` or ``/``."""
    return Path(os.environ.get(HOST_ROOT_ENV) or "/")


def host_name() -> str:
    """This machine's name: ``<root>/proc/sys/kernel/hostname`` under a fake host root (so a
    test can run two "hosts" on one machine), else the socket's host name."""
    if os.environ.get(HOST_ROOT_ENV):
        path = host_root() / "proc" / "sys" / "kernel" / "hostname"
        if path.is_file():
            name = path.read_text().strip()
            if name:
                return name
    import socket

    return socket.gethostname()


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo (and the cpufreq sysfs, or sysctl on macOS) say about this CPU.

    The first nine fields are positional and stable; the rest have defaults.
    """

    vendor_id: str | None
    cpu_family: int | None
    model: int | None
    model_name: str
    flags: frozenset[str]
    logical_cpus: int
    physical_cores: int | None  # None: the count could not be true (see notes)
    frequency_hz: float | None
    frequency_source: str | None
    #: Arm: ``CPU implementer`` (0x41 = Arm Ltd) and ``CPU part`` (0xd40 = Neoverse V1).
    cpu_implementer: int | None = None
    cpu_part: int | None = None
    #: True when the CPU says it runs under a hypervisor (the x86 ``hypervisor`` flag).
    hypervisor: bool = False
    #: Apple Silicon: the performance cores (``hw.perflevel0.physicalcpu``); None elsewhere.
    performance_cores: int | None = None
    #: Where the identity came from: "/proc/cpuinfo", "sysctl" or "none".
    source: str = "/proc/cpuinfo"
    #: Facts that could not be true and were ignored, each with what it said.
    notes: tuple[str, ...] = ()


def plausible_hz(value_hz: float | None, what: str, notes: list[str]) -> float | None:
    """``value_hz`` when a CPU can run at it, else None with a note saying what was ignored."""
    if value_hz is None:
        return None
    if not math.isfinite(value_hz) or not 0 < value_hz <= MAX_CPU_HZ:
        notes.append(f"{what} gave {value_hz / 1e6:g} MHz, which no CPU runs at: ignored")
        return None
    return value_hz


def plausible_count(count: int | None, what: str, notes: list[str]) -> int | None:
    """A CPU count Linux can have (1 to ``MAX_CPUS``), else None with a note."""
    if count is None:
        return None
    if not 1 <= count <= MAX_CPUS:
        notes.append(f"{what} gave {count} CPUs, more than Linux can address ({MAX_CPUS}): "
                     "ignored")
        return None
    return count


def _physical_cores(blocks: list[dict]) -> int:
    pairs = {(b.get("physical id", "0"), b.get("core id", b.get("processor"))) for b in blocks}
    return max(1, len(pairs))


def _parse_int(text: str | None) -> int | None:
    """A decimal or ``0x`` hex number, as /proc/cpuinfo writes them; None if it is neither."""
    if text is None:
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        try:
            return int(text.strip())
        except ValueError:
            return None


def default_sysctl(name: str) -> str | None:
    """``sysctl -n NAME`` on this machine, or None where it fails or does not exist."""
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def read_sysctl_cpuinfo(sysctl: SysctlRunner) -> CpuInfo | None:
    """Apple Silicon's identity through ``sysctl`` (brand string, core counts, features).

    None when the runner gives no brand string (not macOS, or sysctl missing).
    """
    brand = sysctl("machdep.cpu.brand_string")
    if not brand:
        return None

    def count(name: str) -> int | None:
        value = _parse_int(sysctl(name))
        return value if value and value > 0 else None

    physical = count("hw.physicalcpu") or os.cpu_count() or 1
    logical = count("hw.logicalcpu") or physical
    flags = frozenset(flag for key, flag in APPLE_FEATURE_FLAGS.items() if sysctl(key) == "1")
    return CpuInfo(vendor_id=None, cpu_family=None, model=None, model_name=brand.strip(),
                   flags=flags, logical_cpus=logical, physical_cores=physical,
                   frequency_hz=None, frequency_source=None,
                   performance_cores=count("hw.perflevel0.physicalcpu"), source="sysctl")


def read_cpuinfo(root: str | Path | None = None, sysctl: SysctlRunner | None = None) -> CpuInfo:
    """Parse ``<root>/proc/cpuinfo`` (default: :func:`host_root`).

    With no /proc/cpuinfo, ``sysctl`` (default: the real one on macOS only) is asked for
    Apple Silicon's brand string and core counts.
    """
    root = Path(root) if root is not None else host_root()
    notes: list[str] = []
    try:
        raw = (root / "proc/cpuinfo").read_bytes()
    except OSError:
        raw = b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        notes.append("/proc/cpuinfo is not UTF-8 text: its undecodable bytes were replaced")
    blocks: list[dict] = []
    for chunk in text.strip().split("\n\n"):
        entry = {}
        for line in chunk.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        if entry:
            blocks.append(entry)
    if not blocks:
        runner = sysctl if sysctl is not None else (default_sysctl if sys.platform == "darwin"
                                                    else None)
        info = read_sysctl_cpuinfo(runner) if runner is not None else None
        if info is not None:
            return info
    # Arm kernels put "CPU implementer"/"CPU part" in each processor block (some also put
    # "Features" there); the first block that has a key is the one to read.
    first = blocks[0] if blocks else {}

    def field(key: str) -> str | None:
        for block in blocks:
            if key in block:
                return block[key]
        return None

    def as_int(key: str) -> int | None:
        try:
            return int(first[key])
        except (KeyError, ValueError):
            return None

    flags = frozenset((field("flags") or field("Features") or "").split())
    hypervisor = "hypervisor" in flags
    freq_hz, freq_source = None, None
    max_freq = root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        freq_hz = plausible_hz(int(max_freq.read_text().strip()) * 1e3,  # kHz
                               "cpufreq cpuinfo_max_freq", notes)
        freq_source = "cpufreq cpuinfo_max_freq" if freq_hz else None
    except (OSError, ValueError):
        pass
    if freq_hz is None and "cpu MHz" in first:
        try:
            freq_hz = plausible_hz(float(first["cpu MHz"]) * 1e6, "/proc/cpuinfo 'cpu MHz'",
                                   notes)
        except ValueError:
            notes.append(f"/proc/cpuinfo 'cpu MHz' is {first['cpu MHz'][:40]!r}, not a "
                         "number: ignored")
        if freq_hz is not None:
            freq_source = ("/proc/cpuinfo 'cpu MHz' (hypervisor guest, no cpufreq; may "
                           "differ from the boost clock)" if hypervisor else
                           "/proc/cpuinfo 'cpu MHz' (the clock when read, no cpufreq)")
    implementer, part = _parse_int(field("CPU implementer")), _parse_int(field("CPU part"))
    model_name = field("model name")
    if not model_name and implementer is not None and part is not None:
        model_name = f"Arm CPU (implementer 0x{implementer:02x}, part 0x{part:03x})"
    return CpuInfo(
        vendor_id=first.get("vendor_id"),
        cpu_family=as_int("cpu family"),
        model=as_int("model"),
        model_name=model_name or "unknown CPU",
        flags=flags,
        logical_cpus=plausible_count(len(blocks), "/proc/cpuinfo", notes) or (os.cpu_count() or 1),
        physical_cores=(plausible_count(_physical_cores(blocks), "/proc/cpuinfo's cores", [])
                        if blocks else (os.cpu_count() or 1)),
        frequency_hz=freq_hz,
        frequency_source=freq_source,
        cpu_implementer=implementer,
        cpu_part=part,
        hypervisor=hypervisor,
        source="/proc/cpuinfo" if blocks else "none",
        notes=tuple(notes),
    )
