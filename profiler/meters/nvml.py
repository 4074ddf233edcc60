"""NVIDIA GPU energy through NVML (nvidia-ml-py, module ``pynvml``).

Two independent measurements per GPU, both stored:

- ``nvml_counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded;
  Volta and newer), differenced across the window.
- ``nvml_power_integral``: a background sampler reads power (the instantaneous field value
  ``NVML_FI_DEV_POWER_INSTANT`` where the driver has it, else ``nvmlDeviceGetPowerUsage``,
  a 1 s average on recent GPUs) and integrates it by the trapezoid rule.

The counter is the reported energy where supported; the integral is the fallback (pre-Volta)
and the cross-check. A window where they differ by more than ``tolerance`` is flagged
``counters_disagree``. The sensor's update period is probed at start; a window shorter than
``UPDATE_PERIODS_PER_WINDOW`` periods (or than ``MIN_WINDOW_S``), or with fewer than
``MIN_SAMPLES`` samples, is flagged ``approximate``. SM and memory clocks, temperature, the
power limit and the clock-event (throttle) reasons are recorded; a window with a power-cap,
thermal or hardware slowdown reason is flagged ``throttled``.

GPUs are identified by UUID and de-duplicated, so a GPU named twice is counted once; the set
follows CUDA_VISIBLE_DEVICES through the UUIDs torch reports.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

from profiler.errors import MeterUnavailable
from profiler.meters.base import (FLAG_APPROXIMATE, FLAG_COUNTERS_DISAGREE, FLAG_THROTTLED,
                                  DeviceEnergy, EnergyReading, Meter)
from profiler.meters.sampler import Sampler, trapezoid_j

METHOD_COUNTER = "nvml_counter"
METHOD_INTEGRAL = "nvml_power_integral"
SCOPE = "gpu_board"
MIN_WINDOW_S = 1.0
MIN_SAMPLES = 10
UPDATE_PERIODS_PER_WINDOW = 5
TELEMETRY_EVERY = 4  # polls between clock/temperature/throttle reads

# Clock-event reasons that mean the GPU ran slower than it could (power, heat, hardware).
THROTTLE_REASONS = {
    0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
}
OTHER_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x10: "sync_boost",
                 0x100: "display_clock_setting"}


def load_pynvml():
    """Import pynvml, or raise MeterUnavailable with the install hint."""
    try:
        import pynvml
    except ImportError as e:
        raise MeterUnavailable("pynvml is not importable: pip install nvidia-ml-py") from e
    return pynvml


def normalise_uuid(uuid: str | bytes) -> str:
    if isinstance(uuid, bytes):
        uuid = uuid.decode()
    uuid = str(uuid).strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


def decode_reasons(mask: int) -> list[str]:
    names = {**THROTTLE_REASONS, **OTHER_REASONS}
    return [name for bit, name in sorted(names.items()) if mask & bit]


@dataclass
class _Gpu:
    label: str
    uuid: str
    name: str
    handle: object
    counter: bool = False
    power_source: str | None = None  # "field_instant" or "power_usage"
    start_mj: int | None = None
    times_s: list = field(default_factory=list)
    power_w: list = field(default_factory=list)
    sm_mhz: list = field(default_factory=list)
    mem_mhz: list = field(default_factory=list)
    temp_c: list = field(default_factory=list)
    reasons: int = 0
    power_limit_w: float | None = None

    def reset(self) -> None:
        self.times_s, self.power_w = [], []
        self.sm_mhz, self.mem_mhz, self.temp_c = [], [], []
        self.reasons = 0


def _visible_selectors(uuids: list[str] | None) -> list[tuple[str, object]]:
    """How to find the run's GPUs: by torch UUID, else by CUDA_VISIBLE_DEVICES, else all."""
    if uuids:
        return [("uuid", u) for u in uuids]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return []
    return [("index", int(x)) if x.isdigit() else ("uuid", x)
            for x in (s.strip() for s in env.split(",")) if x]


class NvmlMeter(Meter):
    """Energy of the run's GPUs: NVML energy counter and integrated power samples."""

    def __init__(self, uuids: list[str] | None = None, nvml=None, *, interval_s: float = 0.05,
                 tolerance: float = 0.05, probe_s: float = 0.5, clock=time.perf_counter,
                 sleep=time.sleep):
        self._nvml = nvml or load_pynvml()
        self.interval_s = interval_s
        self.tolerance = tolerance
        self._clock, self._sleep = clock, sleep
        try:
            self._nvml.nvmlInit()
        except Exception as e:  # NVMLError and its subclasses, or a missing shared library
            raise MeterUnavailable(f"NVML failed to initialise: {e}") from e
        self._initialised = True
        try:
            self._gpus = self._resolve(uuids)
            for gpu in self._gpus:
                self._probe_capabilities(gpu)
            self.update_period_s = self._probe_update_period(probe_s) if probe_s > 0 else None
        except Exception:
            self.close()
            raise
        self.min_window_s = max(MIN_WINDOW_S, UPDATE_PERIODS_PER_WINDOW * (self.update_period_s or 0))
        self.method = METHOD_COUNTER if all(g.counter for g in self._gpus) else METHOD_INTEGRAL
        self._polls = 0
        self._sampler = Sampler(self.poll, interval_s)

    # -- set-up -------------------------------------------------------------------------------

    def _resolve(self, uuids: list[str] | None) -> list[_Gpu]:
        nv = self._nvml
        selectors = _visible_selectors(uuids) or [
            ("index", i) for i in range(nv.nvmlDeviceGetCount())]
        gpus: dict[str, _Gpu] = {}
        for kind, value in selectors:
            try:
                handle = (nv.nvmlDeviceGetHandleByIndex(value) if kind == "index" else
                          nv.nvmlDeviceGetHandleByUUID("GPU-" + normalise_uuid(value)))
            except Exception as e:
                raise MeterUnavailable(f"NVML cannot find GPU {kind} {value}: {e}") from e
            uuid = normalise_uuid(nv.nvmlDeviceGetUUID(handle))
            if uuid not in gpus:  # one entry per physical GPU, however often it is named
                name = nv.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else name
                gpus[uuid] = _Gpu(f"gpu:{len(gpus)}", uuid, name, handle)
        if not gpus:
            raise MeterUnavailable("NVML sees no GPU")
        return list(gpus.values())

    def _probe_capabilities(self, gpu: _Gpu) -> None:
        nv = self._nvml
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
            gpu.counter = True
        except Exception:  # pre-Volta: not supported
            gpu.counter = False
        try:
            if self._read_instant_mw(gpu) is not None:
                gpu.power_source = "field_instant"
        except Exception:
            pass
        if gpu.power_source is None:
            try:
                nv.nvmlDeviceGetPowerUsage(gpu.handle)
                gpu.power_source = "power_usage"
            except Exception:
                pass
        if not gpu.counter and gpu.power_source is None:
            raise MeterUnavailable(f"{gpu.name} reports neither an energy counter nor power")
        try:
            gpu.power_limit_w = nv.nvmlDeviceGetEnforcedPowerLimit(gpu.handle) / 1e3
        except Exception:
            gpu.power_limit_w = None

    def _read_instant_mw(self, gpu: _Gpu) -> int | None:
        nv = self._nvml
        values = nv.nvmlDeviceGetFieldValues(gpu.handle, [nv.NVML_FI_DEV_POWER_INSTANT])
        value = values[0]
        if value.nvmlReturn != nv.NVML_SUCCESS:
            return None
        return int(value.value.uiVal)

    def _read_power_w(self, gpu: _Gpu) -> float | None:
        if gpu.power_source == "field_instant":
            mw = self._read_instant_mw(gpu)
        elif gpu.power_source == "power_usage":
            mw = self._nvml.nvmlDeviceGetPowerUsage(gpu.handle)
        else:
            return None
        return None if mw is None else mw / 1e3

    def _probe_update_period(self, probe_s: float) -> float | None:
        """Median time between changes of the first GPU's power reading, polled fast."""
        gpu = next((g for g in self._gpus if g.power_source), None)
        if gpu is None:
            return None
        changes, last = [], None
        t0 = self._clock()
        while (now := self._clock()) - t0 < probe_s:
            value = self._read_power_w(gpu)
            if last is not None and value != last:
                changes.append(now)
            last = value
            self._sleep(0.002)
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        return statistics.median(gaps) if gaps else None

    # -- the window ---------------------------------------------------------------------------

    def poll(self) -> None:
        """Read power (and every few polls the telemetry) of each GPU; the sampler calls it."""
        nv = self._nvml
        telemetry = self._polls % TELEMETRY_EVERY == 0
        self._polls += 1
        for gpu in self._gpus:
            power = self._read_power_w(gpu)
            if power is not None:
                gpu.times_s.append(self._clock())
                gpu.power_w.append(power)
            if telemetry:
                self._read_telemetry(nv, gpu)

    @staticmethod
    def _read_telemetry(nv, gpu: _Gpu) -> None:
        # Each reading is optional: a GPU or driver without it just leaves the list empty.
        for target, fn in ((gpu.sm_mhz, lambda: nv.nvmlDeviceGetClockInfo(gpu.handle, nv.NVML_CLOCK_SM)),
                           (gpu.mem_mhz, lambda: nv.nvmlDeviceGetClockInfo(gpu.handle, nv.NVML_CLOCK_MEM)),
                           (gpu.temp_c, lambda: nv.nvmlDeviceGetTemperature(gpu.handle, nv.NVML_TEMPERATURE_GPU))):
            try:
                target.append(fn())
            except Exception:
                pass
        for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            try:
                gpu.reasons |= int(getattr(nv, name)(gpu.handle))
                break
            except Exception:
                continue

    def start(self) -> None:
        for gpu in self._gpus:
            gpu.reset()
            gpu.start_mj = (int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
                            if gpu.counter else None)
        self._polls = 0
        self._sampler.start()

    def stop(self, duration_s: float) -> EnergyReading:
        self._sampler.stop()
        return EnergyReading(duration_s=duration_s,
                             devices=tuple(self._gpu_energy(g, duration_s) for g in self._gpus))

    def _gpu_energy(self, gpu: _Gpu, duration_s: float) -> DeviceEnergy:
        counter_j = None
        if gpu.counter:
            counter_j = (int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
                         - gpu.start_mj) / 1e3
        integral_j = trapezoid_j(gpu.times_s, gpu.power_w) if len(gpu.times_s) >= 2 else None
        energy_j = counter_j if counter_j is not None else integral_j
        flags, notes = set(), []
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
        if gpu.reasons & sum(THROTTLE_REASONS):
            flags.add(FLAG_THROTTLED)
        return DeviceEnergy(
            device=gpu.label, energy_j=energy_j,
            method=METHOD_COUNTER if counter_j is not None else METHOD_INTEGRAL, scope=SCOPE,
            avg_power_w=energy_j / duration_s if energy_j is not None and duration_s > 0 else None,
            peak_power_w=max(gpu.power_w) if gpu.power_w else None,
            flags=tuple(sorted(flags)),
            reason=None if energy_j is not None else "no counter and too few power samples",
            detail={
                "name": gpu.name, "uuid": gpu.uuid, "counter_energy_j": counter_j,
                "integral_energy_j": integral_j, "relative_disagreement": disagreement,
                "tolerance": self.tolerance, "power_source": gpu.power_source,
                "samples": len(gpu.times_s), "update_period_s": self.update_period_s,
                "power_limit_w": gpu.power_limit_w,
                "sm_clock_mhz": _summary(gpu.sm_mhz), "mem_clock_mhz": _summary(gpu.mem_mhz),
                "temperature_c": _summary(gpu.temp_c),
                "clock_event_reasons": decode_reasons(gpu.reasons), "notes": notes,
            },
            power_trace=tuple(zip(gpu.times_s, gpu.power_w)),
        )

    # -- description --------------------------------------------------------------------------

    @property
    def uuids(self) -> list[str]:
        return [g.uuid for g in self._gpus]

    def describe(self) -> dict:
        return {**super().describe(), "scope": SCOPE, "interval_s": self.interval_s,
                "update_period_s": self.update_period_s, "tolerance": self.tolerance,
                "devices": [{"name": g.name, "uuid": g.uuid, "energy_counter": g.counter,
                             "power_source": g.power_source, "power_limit_w": g.power_limit_w}
                            for g in self._gpus]}

    def close(self) -> None:
        if getattr(self, "_sampler", None) is not None:
            self._sampler.cancel()
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down a half-initialised library is best effort
                pass


def _summary(values: list) -> dict | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
