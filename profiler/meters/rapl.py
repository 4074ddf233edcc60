"""CPU package and DRAM energy from RAPL through the Linux powercap sysfs.

Zones live under ``<root>/sys/class/powercap/intel-rapl:N`` (packages; the same driver serves
AMD on recent kernels) with sub-zones ``intel-rapl:N:M`` (core, uncore, dram). Only package
and dram zones are summed: core and uncore are inside their package, and ``psys`` covers the
packages too, so counting them as well would double count (psys is used only when the
machine has no package zone).

Each ``energy_uj`` counter wraps at ``max_energy_range_uj``. A background sampler polls every
``interval_s`` and adds up the increments, adding the range back at each wrap, so a long
window with several wraps is measured correctly as long as a poll comes before each wrap.
A decrease is taken as a wrap only when the wrapped increment fits the zone's range and the
time since the last poll at the most a device can draw (``MAX_DEVICE_POWER_W``); any other
decrease (a counter that stepped back, or a zone with no range) is a counter reset, and the
window's energy for that zone is missing with that reason, never a guessed wrap.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import MeterUnavailable
from profiler.meters.base import (FLAG_IMPOSSIBLE, MAX_DEVICE_POWER_W, DeviceEnergy,
                                  EnergyReading, Meter, flag_short)
from profiler.meters.sampler import Sampler
from profiler.meters.registry import MeterSpec, register

METHOD = "rapl"
POWERCAP = "sys/class/powercap"
ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
READ_ACCESS_HINT = (
    "RAPL energy counters are readable by root only since Linux 5.10: run as root, or grant "
    "read access with `sudo chmod -R a+r /sys/class/powercap/intel-rapl` (until reboot) or a "
    "udev rule"
)


@dataclass
class Zone:
    name: str  # e.g. package-0, dram
    label: str  # e.g. cpu:package-0, cpu:package-0:dram
    scope: str  # cpu_package, dram, psys
    energy_path: Path
    max_range_uj: int
    last_uj: int | None = None
    last_t: float | None = None
    total_uj: int = 0
    wraps: int = 0
    trace: list = field(default_factory=list)
    #: Why the window's energy is lost (the counter was reset), or None.
    reset: str | None = None


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _read_name(path: Path) -> tuple[str | None, str | None]:
    """A zone's ``name`` file as text, or (None, why) when it is unreadable, a folder, or not
    UTF-8 text (a name that cannot be true is ignored, never guessed)."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        return None, f"{path} is a folder, not a name"
    except OSError as e:
        return None, f"{path} cannot be read ({e.strerror or e})"
    try:
        return raw.decode("utf-8").strip(), None
    except UnicodeDecodeError:
        return None, f"{path} is not UTF-8 text"


def discover_zones(root: str | Path = "/") -> list[Zone]:
    """The zones to sum, or MeterUnavailable saying why none can be used."""
    base = Path(root) / POWERCAP
    if not base.is_dir():
        raise MeterUnavailable(f"no RAPL: {base} does not exist (no powercap driver, or a VM "
                               "that does not expose it)")
    found: dict[str, Path] = {}
    for path in base.iterdir():
        if ZONE_RE.match(path.name):
            found.setdefault(path.name, path)
    packages, drams, psys, ignored = [], [], [], []
    for zone_id, path in sorted(found.items()):
        name, why = _read_name(path / "name")
        if name is None:
            ignored.append(why)
            continue
        top = ZONE_RE.match(zone_id).group(2) is None
        if top and name.startswith("package"):
            packages.append((name, name, "cpu_package", path))
        elif not top and name == "dram":
            parent = (found.get(zone_id.rsplit(":", 1)[0]) or path.parent) / "name"
            parent_name = _read_name(parent)[0] or zone_id
            drams.append((name, f"{parent_name}:dram", "dram", path))
        elif top and name == "psys":
            psys.append((name, name, "psys", path))
    chosen = packages + drams or psys
    if not chosen:
        why = f" (ignored: {'; '.join(ignored[:3])})" if ignored else ""
        raise MeterUnavailable(f"no RAPL package, dram or psys zone under {base}{why}")
    return [_make_zone(*z) for z in chosen]


def _make_zone(name: str, label: str, scope: str, path: Path) -> Zone:
    energy = path / "energy_uj"
    try:
        _read_int(energy)
    except PermissionError as e:
        raise MeterUnavailable(f"cannot read {energy}: {READ_ACCESS_HINT}") from e
    except (OSError, ValueError) as e:
        raise MeterUnavailable(f"cannot read {energy}: {e}") from e
    try:
        max_range = _read_int(path / "max_energy_range_uj")
    except (OSError, ValueError) as e:
        raise MeterUnavailable(f"{path}/max_energy_range_uj is missing or unreadable, so the "
                               f"counter's wraparound cannot be corrected") from e
    return Zone(name, f"cpu:{label}", scope, energy, max_range)


class RaplMeter(Meter):
    """Energy of the CPU packages and DRAM from RAPL counters."""

    method = METHOD
    min_window_s = 1.0

    def __init__(self, root: str | Path = "/", interval_s: float = 0.1, clock=time.perf_counter):
        self.root = Path(root)
        self.zones = discover_zones(self.root)
        self.interval_s = interval_s
        self._clock = clock
        self._sampler = Sampler(self.poll, interval_s)

    def poll(self) -> None:
        """Read every zone's counter and add the increment since the last read."""
        now = self._clock()
        for z in self.zones:
            value = _read_int(z.energy_path)
            if z.last_uj is not None:
                delta = value - z.last_uj
                if delta < 0:
                    delta = self._wrapped(z, value, now)
                    if delta is None:
                        z.last_uj, z.last_t = value, now
                        continue
                z.total_uj += delta
                if now > z.last_t:
                    z.trace.append((now, delta / 1e6 / (now - z.last_t)))
            z.last_uj, z.last_t = value, now

    @staticmethod
    def _wrapped(z: Zone, value: int, now: float) -> int | None:
        """The increment of a counter that went down, if it wrapped; None (and the zone's
        ``reset`` set) when no wrap at a plausible power explains the decrease."""
        wrapped = value - z.last_uj + z.max_range_uj
        elapsed = max(now - z.last_t, 0.0)
        most = MAX_DEVICE_POWER_W * elapsed * 1e6 * 1.01 + 1
        if z.max_range_uj > 0 and 0 <= wrapped <= most:
            z.wraps += 1
            return wrapped
        if z.reset is None:
            z.reset = (f"counter reset: {z.energy_path} went from {z.last_uj} to {value} uJ, "
                       f"which no wrap at max_energy_range_uj {z.max_range_uj} explains within "
                       f"{elapsed:.3g} s at up to {MAX_DEVICE_POWER_W:g} W")
        return None

    def start(self) -> None:
        for z in self.zones:
            z.last_uj = z.last_t = None
            z.total_uj, z.wraps, z.trace, z.reset = 0, 0, [], None
        self._sampler.start()

    def stop(self, duration_s: float) -> EnergyReading:
        self._sampler.stop()
        devices = []
        for z in self.zones:
            energy_j = None if z.reset else z.total_uj / 1e6
            devices.append(DeviceEnergy(
                device=z.label, energy_j=energy_j, method=METHOD, scope=z.scope,
                avg_power_w=energy_j / duration_s if duration_s > 0 and energy_j is not None
                else None,
                peak_power_w=max(p for _, p in z.trace) if z.trace and not z.reset else None,
                flags=flag_short(duration_s, self.min_window_s) + ((FLAG_IMPOSSIBLE,)
                                                                    if z.reset else ()),
                reason=z.reset,
                detail={"zone": z.name, "wraps": z.wraps, "max_energy_range_uj": z.max_range_uj,
                        "path": str(z.energy_path)},
                power_trace=() if z.reset else tuple(z.trace),
            ))
        return EnergyReading(duration_s=duration_s, devices=tuple(devices))

    def describe(self) -> dict:
        return {**super().describe(), "interval_s": self.interval_s,
                "devices": [{"zone": z.label, "scope": z.scope,
                             "max_energy_range_uj": z.max_range_uj} for z in self.zones]}

    def close(self) -> None:
        self._sampler.cancel()


register(MeterSpec(METHOD, kinds=("cpu",), priority=100,
                   factory=lambda request: RaplMeter(root=request.sysfs_root)))
