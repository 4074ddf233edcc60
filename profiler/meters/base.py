"""The meter interface and the readings every meter returns.

Units: energy in J, power in W, time in s. A reading that could not be taken carries
``energy_j=None`` and a ``reason``; it is never a silent zero.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

# Flags a reading can carry.
FLAG_APPROXIMATE = "approximate"  # window too short, or too few samples, for this meter
FLAG_ESTIMATED = "estimated"  # not a measurement: a model's estimate
FLAG_THROTTLED = "throttled"  # the device slowed down for power, heat or a hardware reason
FLAG_COUNTERS_DISAGREE = "counters_disagree"  # two measurements of one window differ
FLAG_GENERIC_CPU_POWER = "generic_cpu_power"  # estimate from a generic per-core power figure


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


def flag_short(duration_s: float, min_window_s: float) -> tuple[str, ...]:
    """The approximate flag for a window shorter than the meter's minimum."""
    return (FLAG_APPROXIMATE,) if duration_s < min_window_s else ()
