"""NVIDIA GPU energy through NVML (nvidia-ml-py, module ``pynvml``), on the common GPU meter
(:mod:`profiler.meters.gpu`). Two independent measurements per GPU, both stored:

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

from hardware_profiles.identity import normalise_uuid
from profiler.errors import MeterUnavailable
from profiler.meters.gpu import MIN_WINDOW_S, GpuMeter, GpuRecord
from profiler.meters.registry import MeterSpec, register

METHOD_COUNTER = "nvml_counter"
METHOD_INTEGRAL = "nvml_power_integral"
UPDATE_PERIODS_PER_WINDOW = 5

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


def decode_reasons(mask: int) -> list[str]:
    names = {**THROTTLE_REASONS, **OTHER_REASONS}
    return [name for bit, name in sorted(names.items()) if mask & bit]


def _visible_selectors(uuids: list[str] | None) -> list[tuple[str, object]]:
    """How to find the run's GPUs: by torch UUID, else by CUDA_VISIBLE_DEVICES, else all."""
    if uuids:
        return [("uuid", u) for u in uuids]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return []
    return [("index", int(x)) if x.isdigit() else ("uuid", x)
            for x in (s.strip() for s in env.split(",")) if x]


class NvmlMeter(GpuMeter):
    """Energy of the run's GPUs: NVML energy counter and integrated power samples."""

    method_counter = METHOD_COUNTER
    method_integral = METHOD_INTEGRAL

    def __init__(self, uuids: list[str] | None = None, nvml=None, *, interval_s: float = 0.05,
                 tolerance: float = 0.05, probe_s: float = 0.5, clock=time.perf_counter,
                 sleep=time.sleep):
        super().__init__(interval_s=interval_s, tolerance=tolerance, clock=clock)
        self._nvml = nvml or load_pynvml()
        self._sleep = sleep
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
        self._ready(max(MIN_WINDOW_S, UPDATE_PERIODS_PER_WINDOW * (self.update_period_s or 0)))

    # -- set-up -------------------------------------------------------------------------------

    def _resolve(self, uuids: list[str] | None) -> list[GpuRecord]:
        nv = self._nvml
        selectors = _visible_selectors(uuids) or [
            ("index", i) for i in range(nv.nvmlDeviceGetCount())]
        gpus: dict[str, GpuRecord] = {}
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
                gpus[uuid] = GpuRecord(f"gpu:{len(gpus)}", uuid, name, handle)
        if not gpus:
            raise MeterUnavailable("NVML sees no GPU")
        return list(gpus.values())

    def _probe_capabilities(self, gpu: GpuRecord) -> None:
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

    def _read_instant_mw(self, gpu: GpuRecord) -> int | None:
        nv = self._nvml
        values = nv.nvmlDeviceGetFieldValues(gpu.handle, [nv.NVML_FI_DEV_POWER_INSTANT])
        value = values[0]
        if value.nvmlReturn != nv.NVML_SUCCESS:
            return None
        return int(value.value.uiVal)

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

    # -- the reads ----------------------------------------------------------------------------

    def _read_counter_j(self, gpu: GpuRecord) -> float:
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)) / 1e3

    def _read_power_w(self, gpu: GpuRecord) -> float | None:
        if gpu.power_source == "field_instant":
            mw = self._read_instant_mw(gpu)
        elif gpu.power_source == "power_usage":
            mw = self._nvml.nvmlDeviceGetPowerUsage(gpu.handle)
        else:
            return None
        return None if mw is None else mw / 1e3

    def _read_telemetry(self, gpu: GpuRecord) -> None:
        # Each reading is optional: a GPU or driver without it just leaves the list empty.
        nv, h = self._nvml, gpu.handle
        for name, fn in (("sm_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
                         ("mem_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
                         ("temperature_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))):
            try:
                gpu.add(name, fn())
            except Exception:
                pass
        for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            try:
                mask = gpu.extra.get("reasons", 0) | int(getattr(nv, fn)(h))
            except Exception:
                continue
            gpu.extra["reasons"] = mask
            gpu.throttles = {THROTTLE_REASONS[b] for b in THROTTLE_REASONS if mask & b}
            break

    def _vendor_detail(self, gpu: GpuRecord) -> dict:
        return {"update_period_s": self.update_period_s,
                "clock_event_reasons": decode_reasons(gpu.extra.get("reasons", 0))}

    def _shutdown(self) -> None:
        self._nvml.nvmlShutdown()

    def describe(self) -> dict:
        return {**super().describe(), "update_period_s": self.update_period_s}


def _from_request(request) -> NvmlMeter:
    return NvmlMeter(uuids=list(request.gpu_uuids) or None, nvml=request.modules.get("pynvml"),
                     probe_s=request.probe_s)


register(MeterSpec("nvml", kinds=("nvidia",), priority=100, factory=_from_request))
