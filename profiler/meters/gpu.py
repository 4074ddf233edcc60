"""What every GPU meter does the same way, whatever the vendor library (NVML, amdsmi).

Two independent measurements per GPU, both stored: the vendor's energy counter differenced
across the window, and power samples read by a background :class:`Sampler` and integrated by
the trapezoid rule. The counter is the reported energy where the GPU has one; the integral is
the fallback and the cross-check (``counters_disagree`` above ``tolerance``). A window shorter
than ``min_window_s`` or with fewer than ``MIN_SAMPLES`` samples is ``approximate``; a window
in which the vendor reported a slowdown (power cap, thermal, hardware) is ``throttled``.

A vendor module subclasses :class:`GpuMeter` and implements the reads: ``_read_counter_j``,
``_read_power_w``, ``_read_telemetry`` and ``_shutdown``; its ``__init__`` resolves the GPUs
(:class:`GpuRecord`, one per physical GPU) and then calls :meth:`GpuMeter._ready`.
"""

from __future__ import annotations

import statistics
import time
from abc import abstractmethod
from dataclasses import dataclass, field

from profiler.meters.base import (FLAG_APPROXIMATE, FLAG_COUNTERS_DISAGREE, FLAG_THROTTLED,
                                  DeviceEnergy, EnergyReading, Meter)
from profiler.meters.sampler import Sampler, trapezoid_j

SCOPE = "gpu_board"
#: Some reads failed during the window (counted per GPU in ``sampling_errors``); the energy
#: comes from what was left (the counter, or the samples that were read).
FLAG_SAMPLING_ERRORS = "sampling_errors"
MIN_WINDOW_S = 1.0
MIN_SAMPLES = 10
TELEMETRY_EVERY = 4  # polls between clock/temperature/throttle reads


@dataclass
class GpuRecord:
    """One physical GPU being metered, and what the current window has read from it."""

    label: str
    uuid: str
    name: str
    handle: object
    counter: bool = False
    power_source: str | None = None
    power_limit_w: float | None = None
    start_j: float | None = None
    times_s: list = field(default_factory=list)
    power_w: list = field(default_factory=list)
    #: telemetry name (with its unit, e.g. ``sm_clock_mhz``) -> values read this window
    telemetry: dict = field(default_factory=dict)
    #: names of the slowdowns the vendor reported this window (set by ``_read_telemetry``)
    throttles: set = field(default_factory=set)
    #: vendor readings this window that are not telemetry (e.g. NVML's clock-event reasons)
    extra: dict = field(default_factory=dict)
    #: reads that raised this window, and the last error
    sampling_errors: int = 0
    last_error: str | None = None
    #: notes that hold for every window (e.g. a MIG instance metered through its GPU)
    static_notes: list = field(default_factory=list)
    mig_instances: list = field(default_factory=list)

    def reset(self) -> None:
        self.times_s, self.power_w = [], []
        self.telemetry, self.throttles, self.extra = {}, set(), {}
        self.sampling_errors, self.last_error = 0, None

    def failed(self, error: BaseException) -> None:
        """Count one failed read (a transient driver error must not end the window)."""
        self.sampling_errors += 1
        self.last_error = f"{type(error).__name__}: {error}"

    def add(self, name: str, value) -> None:
        """Record one telemetry reading (None: the GPU does not report it)."""
        if value is not None:
            self.telemetry.setdefault(name, []).append(value)


class GpuMeter(Meter):
    """A vendor GPU meter: energy counter plus sampled power integral, per physical GPU."""

    method_counter = ""
    method_integral = ""
    vendor = ""

    def __init__(self, *, interval_s: float, tolerance: float, clock=time.perf_counter):
        self.interval_s = interval_s
        self.tolerance = tolerance
        self._clock = clock
        self._gpus: list[GpuRecord] = []
        self._polls = 0
        self._sampler: Sampler | None = None

    def _ready(self, min_window_s: float = MIN_WINDOW_S) -> None:
        """Called by the subclass once its GPUs are resolved and probed."""
        self.min_window_s = min_window_s
        self.method = (self.method_counter if all(g.counter for g in self._gpus)
                       else self.method_integral)
        self._sampler = Sampler(self.poll, self.interval_s)

    # -- what a vendor reads --------------------------------------------------------------------

    @abstractmethod
    def _read_counter_j(self, gpu: GpuRecord) -> float:
        """The GPU's energy counter, in J (any origin: it is differenced)."""

    @abstractmethod
    def _read_power_w(self, gpu: GpuRecord) -> float | None:
        """One power reading in W, or None where the GPU has no power reading."""

    @abstractmethod
    def _read_telemetry(self, gpu: GpuRecord) -> None:
        """Read clocks, temperature and slowdowns into ``gpu`` (each optional)."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Release the vendor library."""

    def _vendor_detail(self, gpu: GpuRecord) -> dict:
        """Vendor-specific entries of a reading's detail."""
        return {}

    # -- the window -----------------------------------------------------------------------------

    def poll(self) -> None:
        """Read power (and every few polls the telemetry) of each GPU; the sampler calls it."""
        telemetry = self._polls % TELEMETRY_EVERY == 0
        self._polls += 1
        for gpu in self._gpus:
            try:
                power = self._read_power_w(gpu)
            except Exception as e:  # counted and flagged; the counter may still cover it
                gpu.failed(e)
                power = None
            if power is not None:
                gpu.times_s.append(self._clock())
                gpu.power_w.append(power)
            if telemetry:
                try:
                    self._read_telemetry(gpu)
                except Exception as e:
                    gpu.failed(e)

    def start(self) -> None:
        for gpu in self._gpus:
            gpu.reset()
            gpu.start_j = None
            if gpu.counter:
                try:
                    gpu.start_j = self._read_counter_j(gpu)
                except Exception as e:  # this window falls back to the power integral
                    gpu.failed(e)
        self._polls = 0
        self._sampler.start()

    def stop(self, duration_s: float) -> EnergyReading:
        self._sampler.stop()
        return EnergyReading(duration_s=duration_s,
                             devices=tuple(self._gpu_energy(g, duration_s) for g in self._gpus))

    def _gpu_energy(self, gpu: GpuRecord, duration_s: float) -> DeviceEnergy:
        flags, notes = set(), list(gpu.static_notes)
        counter_j = None
        if gpu.counter and gpu.start_j is not None:
            try:
                delta_j = self._read_counter_j(gpu) - gpu.start_j
            except Exception as e:
                gpu.failed(e)
                delta_j = None
            if delta_j is not None and delta_j >= 0:
                counter_j = delta_j
            elif delta_j is not None:  # 64-bit counters do not wrap in practice: a driver reload
                notes.append("energy counter went backwards (driver reload?): using the integral")
        integral_j = trapezoid_j(gpu.times_s, gpu.power_w) if len(gpu.times_s) >= 2 else None
        energy_j = counter_j if counter_j is not None else integral_j
        if duration_s < self.min_window_s:
            flags.add(FLAG_APPROXIMATE)
            notes.append(f"window {duration_s:.3f} s < minimum {self.min_window_s:.3f} s")
        if len(gpu.times_s) < MIN_SAMPLES:
            flags.add(FLAG_APPROXIMATE)
            notes.append(f"{len(gpu.times_s)} power samples < {MIN_SAMPLES}")
        disagreement = None
        if counter_j and integral_j is not None:
            disagreement = abs(integral_j - counter_j) / counter_j
            if disagreement > self.tolerance:
                flags.add(FLAG_COUNTERS_DISAGREE)
        if gpu.throttles:
            flags.add(FLAG_THROTTLED)
        if gpu.sampling_errors:
            flags.add(FLAG_SAMPLING_ERRORS)
            notes.append(f"{gpu.sampling_errors} reads failed (last: {gpu.last_error})")
        return DeviceEnergy(
            device=gpu.label, energy_j=energy_j,
            method=self.method_counter if counter_j is not None else self.method_integral,
            scope=SCOPE,
            avg_power_w=energy_j / duration_s if energy_j is not None and duration_s > 0 else None,
            peak_power_w=max(gpu.power_w) if gpu.power_w else None,
            flags=tuple(sorted(flags)),
            reason=None if energy_j is not None else (
                "no energy source left: no counter reading and too few power samples"
                + (f" ({gpu.sampling_errors} reads failed, last: {gpu.last_error})"
                   if gpu.sampling_errors else "")),
            detail={
                "name": gpu.name, "uuid": gpu.uuid, "counter_energy_j": counter_j,
                "integral_energy_j": integral_j, "relative_disagreement": disagreement,
                "tolerance": self.tolerance, "power_source": gpu.power_source,
                "samples": len(gpu.times_s), "power_limit_w": gpu.power_limit_w,
                "sampling_errors": gpu.sampling_errors,
                **{name: summary(values) for name, values in gpu.telemetry.items()},
                **self._vendor_detail(gpu), "notes": notes,
            },
            power_trace=tuple(zip(gpu.times_s, gpu.power_w)),
        )

    # -- description ----------------------------------------------------------------------------

    @property
    def uuids(self) -> list[str]:
        return [g.uuid for g in self._gpus]

    def describe(self) -> dict:
        return {**super().describe(), "scope": SCOPE, "interval_s": self.interval_s,
                "tolerance": self.tolerance,
                "devices": [{"name": g.name, "uuid": g.uuid, "energy_counter": g.counter,
                             "power_source": g.power_source, "power_limit_w": g.power_limit_w}
                            for g in self._gpus]}

    def close(self) -> None:
        if getattr(self, "_sampler", None) is not None:
            self._sampler.cancel()
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._shutdown()
            except Exception:  # shutting down a half-initialised library is best effort
                pass


def summary(values: list) -> dict | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
