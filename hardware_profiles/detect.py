"""Match the machine's devices to profiles, recording the evidence for each match.

Names are compared whole (after normalising case and spaces), never by substring: "L4" must
not match "L40S" and "B300" must not match "GB300". A PCI device id, where known, outranks
the name. An unmatched device gets no profile, never another device's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hardware_profiles.profiles import (CpuProfile, DeviceProfile, ProfileSet, builtin_profiles,
                                        load_profiles)

NO_PROFILE_HINT = "add one with --profile FILE, or run etameter calibrate"


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


@dataclass(frozen=True)
class Match:
    """The outcome of matching one device: a profile or None, the evidence, and the reason."""

    profile: DeviceProfile | CpuProfile | None
    evidence: dict = field(default_factory=dict)
    reason: str | None = None


def match_gpu(name: str, pci_device_id: int | None = None,
              profiles: ProfileSet | None = None) -> Match:
    """Match a GPU by its PCI device id (preferred) or its exact NVML/torch name."""
    profiles = profiles or builtin_profiles()
    evidence: dict = {"name": name}
    if pci_device_id is not None:
        evidence["pci_device_id"] = f"0x{pci_device_id:04x}"
        by_pci = [p for p in profiles.devices if pci_device_id in p.pci_device_ids]
        if len(by_pci) == 1:
            evidence["matched_by"] = "pci_device_id"
            return Match(by_pci[0], evidence)
    by_name = [p for p in profiles.devices if _norm(name) in {_norm(n) for n in p.names}]
    if len(by_name) == 1:
        evidence["matched_by"] = "name"
        return Match(by_name[0], evidence)
    if len(by_name) > 1:
        ids = ", ".join(p.id for p in by_name)
        return Match(None, evidence, f"name {name!r} matches several profiles ({ids}); "
                                     f"the PCI device id is needed to tell them apart")
    return Match(None, evidence, f"no profile for {name}: {NO_PROFILE_HINT}")


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo (and the cpufreq sysfs) say about this machine's CPU."""

    vendor_id: str | None
    cpu_family: int | None
    model: int | None
    model_name: str
    flags: frozenset[str]
    logical_cpus: int
    physical_cores: int
    frequency_hz: float | None
    frequency_source: str | None


def _physical_cores(blocks: list[dict]) -> int:
    pairs = {(b.get("physical id", "0"), b.get("core id", b.get("processor"))) for b in blocks}
    return max(1, len(pairs))


def read_cpuinfo(root: str | Path = "/") -> CpuInfo:
    """Parse ``<root>/proc/cpuinfo``; ``root`` lets tests pass a fake tree."""
    root = Path(root)
    try:
        text = (root / "proc/cpuinfo").read_text()
    except OSError:
        text = ""
    blocks: list[dict] = []
    for chunk in text.strip().split("\n\n"):
        entry = {}
        for line in chunk.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        if entry:
            blocks.append(entry)
    first = blocks[0] if blocks else {}

    def as_int(key: str) -> int | None:
        try:
            return int(first[key])
        except (KeyError, ValueError):
            return None

    freq_hz, freq_source = None, None
    max_freq = root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        freq_hz = int(max_freq.read_text().strip()) * 1e3  # kHz
        freq_source = "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        if "cpu MHz" in first:
            try:
                freq_hz = float(first["cpu MHz"]) * 1e6
                freq_source = "/proc/cpuinfo 'cpu MHz' (nominal under a hypervisor; may differ from the boost clock)"
            except ValueError:
                pass
    return CpuInfo(
        vendor_id=first.get("vendor_id"),
        cpu_family=as_int("cpu family"),
        model=as_int("model"),
        model_name=first.get("model name", "unknown CPU"),
        flags=frozenset(first.get("flags", "").split()),
        logical_cpus=len(blocks) or (os.cpu_count() or 1),
        physical_cores=_physical_cores(blocks) if blocks else (os.cpu_count() or 1),
        frequency_hz=freq_hz,
        frequency_source=freq_source,
    )


def match_cpu(info: CpuInfo, profiles: ProfileSet | None = None) -> Match:
    """Match a CPU by vendor, family and model number (never by the marketing name)."""
    profiles = profiles or builtin_profiles()
    evidence = {"model_name": info.model_name, "vendor_id": info.vendor_id,
                "cpu_family": info.cpu_family, "model": info.model}
    for p in profiles.cpus:
        if (p.vendor_id == info.vendor_id and p.cpu_family == info.cpu_family
                and info.model in p.models):
            return Match(p, {**evidence, "matched_by": "vendor_id+cpu_family+model"})
    return Match(None, evidence, f"no profile for CPU {info.model_name} (vendor {info.vendor_id}, "
                                 f"family {info.cpu_family}, model {info.model}): {NO_PROFILE_HINT}")


def isa_flops_per_cycle(info: CpuInfo, precision: str,
                        profiles: ProfileSet | None = None) -> tuple[float | None, str | None]:
    """The best FLOPs/cycle the CPU's instruction-set flags allow for ``precision``."""
    profiles = profiles or builtin_profiles()
    best = None
    for isa in profiles.isas:
        value = isa.flops_per_cycle.get(precision)
        if value is not None and set(isa.flags) <= info.flags and (best is None or value > best[0]):
            best = (value, isa.id)
    return best if best else (None, None)


def cpu_peak_flops_per_s(info: CpuInfo, profile: CpuProfile | None, precision: str,
                         profiles: ProfileSet | None = None) -> tuple[float | None, str]:
    """Theoretical peak ``cores x frequency x FLOPs/cycle``; returns (value or None, how/why).

    FLOPs/cycle come from the microarchitecture's profile where it gives the precision, else
    from the best instruction-set extension the CPU's flags show (e.g. AMX for bf16).
    """
    per_cycle, origin = None, None
    if profile is not None and precision in profile.flops_per_cycle:
        per_cycle, origin = profile.flops_per_cycle[precision], profile.id
    else:
        per_cycle, isa = isa_flops_per_cycle(info, precision, profiles)
        if per_cycle is not None:
            origin = f"ISA {isa}" + ("" if profile else ", no microarchitecture profile: "
                                     "assumes two FMA units")
    if per_cycle is None:
        return None, (f"no {precision} FLOPs per cycle for {info.model_name}: neither a CPU "
                      f"profile nor its instruction-set flags give one")
    if info.frequency_hz is None:
        return None, "the CPU frequency is not exposed (no cpufreq, no 'cpu MHz')"
    value = info.physical_cores * info.frequency_hz * per_cycle
    how = (f"{info.physical_cores} cores x {info.frequency_hz / 1e9:.3f} GHz "
           f"[{info.frequency_source}] x {per_cycle:g} {precision} FLOPs/cycle ({origin})")
    return value, how


@dataclass(frozen=True)
class GpuInfo:
    """What NVML says about one GPU."""

    index: int
    name: str
    uuid: str
    pci_device_id: int | None
    power_limit_w: float | None
    memory_gib: float | None


def _optional(fn):
    try:
        return fn()
    except Exception:  # a reading NVML cannot give is simply absent from the evidence
        return None


def read_gpus(nvml) -> list[GpuInfo]:
    """Every GPU NVML sees, with the evidence detection uses."""
    gpus = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = nvml.nvmlDeviceGetName(h)
        uuid = nvml.nvmlDeviceGetUUID(h)
        pci = _optional(lambda: nvml.nvmlDeviceGetPciInfo(h).pciDeviceId >> 16)
        limit_mw = _optional(lambda: nvml.nvmlDeviceGetPowerManagementLimit(h))
        mem = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(h).total)
        gpus.append(GpuInfo(
            i, name.decode() if isinstance(name, bytes) else name,
            uuid.decode() if isinstance(uuid, bytes) else uuid, pci,
            limit_mw / 1e3 if limit_mw is not None else None,
            mem / 2**30 if mem is not None else None))
    return gpus


def match_gpu_info(gpu: GpuInfo, profiles: ProfileSet | None = None) -> Match:
    """Match by PCI id or exact name, then check memory and power limit against the profile."""
    match = match_gpu(gpu.name, gpu.pci_device_id, profiles)
    evidence = {**match.evidence, "power_limit_w": gpu.power_limit_w, "memory_gib": gpu.memory_gib}
    p = match.profile
    notes = []
    if p is not None:
        if gpu.memory_gib and p.memory_gib and abs(gpu.memory_gib - p.memory_gib) > 0.15 * p.memory_gib:
            notes.append(f"memory {gpu.memory_gib:.0f} GiB differs from the profile's "
                         f"{p.memory_gib:.0f} GiB")
        if gpu.power_limit_w and p.tdp_w and gpu.power_limit_w > 1.05 * p.tdp_w:
            notes.append(f"power limit {gpu.power_limit_w:.0f} W exceeds the profile's TDP "
                         f"{p.tdp_w:.0f} W")
    if notes:
        evidence["inconsistencies"] = notes
    return Match(p, evidence, match.reason)


def find_device_profile(name: str, profiles: ProfileSet | None = None) -> DeviceProfile:
    """A profile by its id, display name or NVML name (whole name, any case).

    Raises ProfileError listing the known ids when nothing matches exactly.
    """
    from profiler.errors import ProfileError

    profiles = profiles or load_profiles()
    wanted = _norm(name)
    for p in profiles.devices:
        if wanted in {_norm(p.id), _norm(p.display_name), *(_norm(n) for n in p.names)}:
            return p
    known = ", ".join(p.id for p in profiles.devices)
    raise ProfileError(f"no profile for device {name!r}: use one of {known}, "
                       "or give the peak with --peak-tflops")
