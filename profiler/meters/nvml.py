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
follows CUDA_VISIBLE_DEVICES through the UUIDs torch reports. Without them (``etameter
meters``), CUDA_VISIBLE_DEVICES is read as CUDA reads it: UUIDs (``GPU-...``, unique prefixes,
``MIG-...``) by UUID; ordinals through the PCI bus order (exact under
CUDA_DEVICE_ORDER=PCI_BUS_ID; CUDA's default fastest-first order equals it only for identical
GPUs, so mixed GPUs without it are refused); an empty value means no GPU. A MIG instance is
metered through its parent GPU, and says so: NVML's energy and power are per GPU, not per
instance.
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

#: The energy counter's quantisation must stay under this share of a window: the minimum
#: window is the counter's update period divided by it.
MAX_COUNTER_QUANTISATION = 0.02

# Clock-event reasons that mean the GPU ran slower than it could (heat, hardware, a brake).
THROTTLE_REASONS = {
    0x8: "hw_slowdown", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}
# sw_power_cap is the steady state of a full load at the board's power limit (700 W on an
# H100 SXM): recorded, not a throttle by itself.
OTHER_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
                 0x10: "sync_boost", 0x100: "display_clock_setting"}
MIG_NOTE = ("MIG instance {mig}: NVML's energy and power are per GPU, not per instance; "
            "the whole GPU {gpu} is metered")


def _is_mig(nv, handle) -> bool:
    try:
        flag = nv.nvmlDeviceIsMigDeviceHandle(handle)
    except Exception:  # drivers before MIG: no MIG handles
        return False
    return bool(getattr(flag, "value", flag))


def _bus_id(nv, handle) -> str:
    bus = nv.nvmlDeviceGetPciInfo(handle).busId
    return (bus.decode() if isinstance(bus, bytes) else str(bus)).lower()


def _median_gap(times: list[float]) -> float | None:
    gaps = [b - a for a, b in zip(times, times[1:])]
    return statistics.median(gaps) if gaps else None


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


def _visible_selectors(uuids: list[str] | None) -> list[tuple[str, object]] | None:
    """How to find the run's GPUs: by torch UUID, else by CUDA_VISIBLE_DEVICES, else None
    (every GPU). An empty CUDA_VISIBLE_DEVICES hides every GPU, as it does for CUDA; so does
    a list that CUDA would stop reading at its first entry (an empty or negative one)."""
    if uuids:
        return [("uuid", u) for u in uuids]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return None
    selectors = []
    for entry in (s.strip() for s in env.split(",")):
        if not entry or entry.startswith("-"):
            break  # CUDA ignores this entry and every one after it
        selectors.append(("ordinal", int(entry)) if entry.isdigit() else ("uuid", entry))
    if not selectors:
        raise MeterUnavailable(f"CUDA_VISIBLE_DEVICES={env!r} makes no GPU visible to this "
                               "process: unset it or name a GPU")
    return selectors


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
            self.update_period_s, self.counter_update_period_s = (
                self._probe_update_periods(probe_s) if probe_s > 0 else (None, None))
        except Exception:
            self.close()
            raise
        self._ready(max(MIN_WINDOW_S, UPDATE_PERIODS_PER_WINDOW * (self.update_period_s or 0),
                        (self.counter_update_period_s or 0) / MAX_COUNTER_QUANTISATION))

    # -- set-up -------------------------------------------------------------------------------

    def _resolve(self, uuids: list[str] | None) -> list[GpuRecord]:
        nv = self._nvml
        selectors = _visible_selectors(uuids)
        if selectors is None:
            selectors = [("index", i) for i in range(nv.nvmlDeviceGetCount())]
        gpus: dict[str, GpuRecord] = {}
        for kind, value in selectors:
            handle, mig = self._find(kind, value)
            uuid = normalise_uuid(nv.nvmlDeviceGetUUID(handle))
            if uuid not in gpus:  # one entry per physical GPU, however often it is named
                name = nv.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else name
                gpus[uuid] = GpuRecord(f"gpu:{len(gpus)}", uuid, name, handle)
            if mig:
                gpus[uuid].static_notes.append(MIG_NOTE.format(mig=mig, gpu=f"GPU-{uuid}"))
                gpus[uuid].mig_instances.append(mig)
        if not gpus:
            raise MeterUnavailable("NVML sees no GPU")
        return list(gpus.values())

    def _find(self, kind: str, value) -> tuple[object, str | None]:
        """The NVML handle of the physical GPU a selector names, and the MIG UUID if it
        named a MIG instance."""
        nv = self._nvml
        try:
            if kind == "index":
                return nv.nvmlDeviceGetHandleByIndex(value), None
            if kind == "ordinal":
                return self._by_ordinal(value), None
            return self._by_uuid(str(value))
        except MeterUnavailable:
            raise
        except Exception as e:
            raise MeterUnavailable(f"NVML cannot find GPU {kind} {value}: {e}") from e

    def _by_uuid(self, text: str) -> tuple[object, str | None]:
        nv = self._nvml
        if text.upper().startswith("MIG-GPU-"):  # the pre-R470 form MIG-GPU-<uuid>/<gi>/<ci>
            return nv.nvmlDeviceGetHandleByUUID(text[4:].split("/")[0]), text
        candidates = ([text] if text.upper().startswith("MIG-") else
                      ["GPU-" + normalise_uuid(text), "MIG-" + normalise_uuid(text)])
        for candidate in candidates:
            try:
                handle = nv.nvmlDeviceGetHandleByUUID(candidate)
            except Exception:
                continue
            if _is_mig(nv, handle):
                return nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle), candidate
            return handle, None
        # CUDA accepts a unique prefix of a GPU UUID.
        prefix = normalise_uuid(text)
        matches = [h for h in self._all_handles()
                   if normalise_uuid(nv.nvmlDeviceGetUUID(h)).startswith(prefix)]
        if len(matches) == 1:
            return matches[0], None
        raise MeterUnavailable(f"NVML cannot find GPU uuid {text}: "
                               + ("the prefix names several GPUs" if matches else "no such GPU"))

    def _all_handles(self) -> list:
        nv = self._nvml
        return [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]

    def _by_ordinal(self, ordinal: int):
        """CUDA ordinal -> NVML handle, through the PCI bus order."""
        nv = self._nvml
        handles = sorted(self._all_handles(), key=lambda h: _bus_id(nv, h))
        if os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
            names = {nv.nvmlDeviceGetName(h) for h in handles}
            if len(names) > 1:
                raise MeterUnavailable(
                    f"CUDA_VISIBLE_DEVICES names GPU {ordinal} in CUDA's fastest-first order, "
                    f"which NVML cannot reproduce across different GPUs ({len(names)} models): "
                    "set CUDA_DEVICE_ORDER=PCI_BUS_ID or name the GPUs by UUID")
        if ordinal >= len(handles):
            raise MeterUnavailable(f"CUDA_VISIBLE_DEVICES names GPU {ordinal} but NVML sees "
                                   f"{len(handles)}")
        return handles[ordinal]

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

    def _probe_update_periods(self, probe_s: float) -> tuple[float | None, float | None]:
        """Median time between changes of the first GPU's power reading and of its energy
        counter, polled every 2 ms: each source has its own update period, and the counter's
        sets how long a window must be for its quantisation to stay small."""
        gpu = next((g for g in self._gpus if g.power_source or g.counter), None)
        if gpu is None:
            return None, None
        power, counter = [], []
        last_p = last_c = None
        t0 = self._clock()
        while (now := self._clock()) - t0 < probe_s:
            if gpu.power_source:
                value = self._read_power_w(gpu)
                if last_p is not None and value != last_p:
                    power.append(now)
                last_p = value
            if gpu.counter:
                value = self._read_counter_j(gpu)
                if last_c is not None and value != last_c:
                    counter.append(now)
                last_c = value
            self._sleep(0.002)
        return _median_gap(power), _median_gap(counter)

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
        reasons = decode_reasons(gpu.extra.get("reasons", 0))
        return {"update_period_s": self.update_period_s,
                "counter_update_period_s": self.counter_update_period_s,
                "clock_event_reasons": reasons, "at_power_limit": "sw_power_cap" in reasons,
                "mig_instances": list(gpu.mig_instances)}

    def _shutdown(self) -> None:
        self._nvml.nvmlShutdown()

    def describe(self) -> dict:
        return {**super().describe(), "update_period_s": self.update_period_s,
                "counter_update_period_s": self.counter_update_period_s,
                "mig_notes": [n for g in self._gpus for n in g.static_notes]}


def _from_request(request) -> NvmlMeter:
    return NvmlMeter(uuids=list(request.gpu_uuids) or None, nvml=request.modules.get("pynvml"),
                     probe_s=request.probe_s)


register(MeterSpec("nvml", kinds=("nvidia",), priority=100, factory=_from_request))
