"""The meter interface and the readings every meter returns.

Units: energy in J, power in W, time in s. A reading that could not be taken carries
``energy_j=None`` and a ``reason``; it is never a silent zero.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace

# Flags a reading can carry.
FLAG_APPROXIMATE = "approximate"  # window too short, or too few samples, for this meter
FLAG_ESTIMATED = "estimated"  # not a measurement: a model's estimate
FLAG_THROTTLED = "throttled"  # the device slowed down for power, heat or a hardware reason
FLAG_COUNTERS_DISAGREE = "counters_disagree"  # two measurements of one window differ
FLAG_GENERIC_CPU_POWER = "generic_cpu_power"  # estimate from a generic per-core power figure
FLAG_IMPOSSIBLE = "impossible_value"  # a reading that cannot be true was dropped (see reason)
#: The most one metered device (a GPU board, a CPU package or its DRAM) can draw, in W: the
#: largest boards are below 3 kW. Energy implying more is a counter fault, never a measurement.
MAX_DEVICE_POWER_W = 5000.0


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one device (a GPU board, a CPU package, an estimate) over one window."""

    device: str
    energy_j: float | None
    method: str  # nvml_counter, nvml_power_integral, rapl, estimated
    scope: str  # gpu_board, cpu_package, dram, cpu_estimate
    estimated: bool = False
    avg_power_w: float | None = None
    peak_power_w: float | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None
    detail: dict = field(default_factory=dict)
    #: (time_s, power_w) samples over the window, where the meter samples power.
    power_trace: tuple[tuple[float, float], ...] = ()
    #: For an estimate: the low and high ends of the band the energy may lie in.
    energy_low_j: float | None = None
    energy_high_j: float | None = None

    def to_dict(self) -> dict:
        """Everything but the power trace (stored in its own table)."""
        d = asdict(self)
        d.pop("power_trace")
        d["power_samples"] = len(self.power_trace)
        return d


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one timed window, per device and in total."""

    duration_s: float
    devices: tuple[DeviceEnergy, ...]
    flags: tuple[str, ...] = ()

    @property
    def energy_j(self) -> float | None:
        """Total energy, or None if any device's energy is missing (a partial sum would lie)."""
        if not self.devices or any(d.energy_j is None for d in self.devices):
            return None
        return sum(d.energy_j for d in self.devices)

    @property
    def energy_band_j(self) -> tuple[float, float] | None:
        """(low, high) total energy where every device has a band (measured devices count
        their own energy at both ends), or None where no device is estimated with a band."""
        if self.energy_j is None or not any(d.energy_low_j is not None for d in self.devices):
            return None
        low = sum(d.energy_low_j if d.energy_low_j is not None else d.energy_j for d in self.devices)
        high = sum(d.energy_high_j if d.energy_high_j is not None else d.energy_j for d in self.devices)
        return low, high

    @property
    def method(self) -> str | None:
        return "+".join(sorted({d.method for d in self.devices})) or None

    @property
    def scope(self) -> str | None:
        return "+".join(sorted({d.scope for d in self.devices})) or None

    @property
    def estimated(self) -> bool:
        return any(d.estimated for d in self.devices)

    @property
    def avg_power_w(self) -> float | None:
        energy = self.energy_j
        if energy is None or self.duration_s <= 0:
            return None
        return energy / self.duration_s

    @property
    def peak_power_w(self) -> float | None:
        """Sum of each device's peak power: the total's peak where there is one device, an
        upper bound of it where there are several (their peaks need not coincide)."""
        peaks = [d.peak_power_w for d in self.devices]
        if not peaks or any(p is None for p in peaks):
            return None
        return sum(peaks)

    @property
    def all_flags(self) -> tuple[str, ...]:
        flags = set(self.flags)
        for d in self.devices:
            flags.update(d.flags)
        return tuple(sorted(flags))

    @property
    def reason(self) -> str | None:
        """Why the total is missing, if it is."""
        if not self.devices:
            return "no meter was available"
        missing = [f"{d.device}: {d.reason}" for d in self.devices if d.energy_j is None]
        return "; ".join(missing) or None


class Meter(ABC):
    """A power source measured over a window: ``start()`` then ``stop(duration_s)``.

    The caller (a :class:`profiler.timing.TimedWindow`) synchronises the device at both edges
    and measures the duration; the meter turns that into energy. ``close()`` releases any
    library handle or background thread.
    """

    #: Method name stored with every reading.
    method: str = ""
    #: Shortest window (s) this meter measures well; shorter windows are flagged approximate.
    min_window_s: float = 1.0

    @abstractmethod
    def start(self) -> None:
        """Begin a window."""

    @abstractmethod
    def stop(self, duration_s: float) -> EnergyReading:
        """End the window begun by ``start`` and return its reading."""

    def describe(self) -> dict:
        """What this meter measures, for the store and ``etameter meters``."""
        return {"method": self.method, "min_window_s": self.min_window_s}

    def close(self) -> None:
        """Release resources. Safe to call more than once."""


def implausible(energy_j: float | None, duration_s: float) -> str | None:
    """Why ``energy_j`` over ``duration_s`` cannot be one device's energy, or None."""
    if energy_j is None:
        return None
    if not isinstance(energy_j, (int, float)) or not math.isfinite(energy_j):
        return f"the meter gave {energy_j!r} J, not a finite energy"
    if energy_j < 0:
        return f"the meter gave a negative energy ({energy_j:.4g} J)"
    if duration_s > 0 and energy_j > MAX_DEVICE_POWER_W * duration_s * 1.01 + 1e-6:
        return (f"{energy_j:.4g} J in {duration_s:.3g} s is {energy_j / duration_s:.4g} W, more "
                f"than a device can draw ({MAX_DEVICE_POWER_W:g} W): a counter fault or reset")
    return None


def plausible(reading: "EnergyReading") -> "EnergyReading":
    """The reading with every device whose energy cannot be true (negative, not finite, or
    above ``MAX_DEVICE_POWER_W`` over the window) made missing with the reason and the
    ``impossible_value`` flag; a peak power above that bound is dropped the same way. Every
    meter's reading passes here before it becomes a window's energy (``Energy.from_reading``)."""
    devices, changed = [], False
    for d in reading.devices:
        why = implausible(d.energy_j, reading.duration_s)
        peak_bad = d.peak_power_w is not None and not (
            isinstance(d.peak_power_w, (int, float)) and math.isfinite(d.peak_power_w)
            and 0 <= d.peak_power_w <= MAX_DEVICE_POWER_W)
        if why is None and not peak_bad:
            devices.append(d)
            continue
        changed = True
        flags = tuple(sorted({*d.flags, FLAG_IMPOSSIBLE}))
        if why is None:
            devices.append(replace(d, peak_power_w=None, flags=flags))
            continue
        devices.append(replace(d, energy_j=None, avg_power_w=None, peak_power_w=None,
                               energy_low_j=None, energy_high_j=None, flags=flags,
                               reason=why, power_trace=()))
    return replace(reading, devices=tuple(devices)) if changed else reading


def flag_short(duration_s: float, min_window_s: float) -> tuple[str, ...]:
    """The approximate flag for a window shorter than the meter's minimum."""
    return (FLAG_APPROXIMATE,) if duration_s < min_window_s else ()
