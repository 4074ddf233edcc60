"""AMD Instinct GPU energy through AMD SMI (the ``amdsmi`` Python package, ROCm's libamd_smi.so),
on the common GPU meter (:mod:`profiler.meters.gpu`).

Two independent measurements per GPU, both stored, as for NVML (:mod:`profiler.meters.nvml`):

- ``amdsmi_counter``: ``amdsmi_get_energy_count`` differenced across the window. The energy is
  ``energy_accumulator x counter_resolution`` in microjoules (amdsmi before 6.2.1 named the
  accumulator ``power``; both are read). The accumulator is a uint64: at 1 kW and a 15.3 uJ
  resolution it would take about nine thousand years to wrap, so wraparound is not corrected;
  a counter that goes backwards (a driver reload) drops to the integral for that window.
- ``amdsmi_power_integral``: a background sampler reads ``amdsmi_get_power_info`` (W):
  ``current_socket_power`` (instantaneous, MI300 series) where it is a number, else
  ``average_socket_power`` (MI200 and older), and integrates it by the trapezoid rule.

The counter is the reported energy where supported (it is not on virtual-machine guests, e.g.
"MI300X VF"); the integral is the fallback and the cross-check. Some AMD GPUs report a wrong
counter (https://github.com/ROCm/amdsmi/issues/38); such a window shows as
``counters_disagree``. A window shorter than ``MIN_WINDOW_S``, or with fewer than
``MIN_SAMPLES`` power samples, is flagged ``approximate``. GFX and memory clocks, the hotspot
temperature and the power cap are recorded; an active power (PPT) or thermal violation
(``amdsmi_get_violation_status``, amdsmi 6.4+) flags the window ``throttled``.

GPUs are identified by amdsmi's UUID (:func:`hardware_profiles.vendors.amd.read_gpus` gives it
to the device's identity, so the run's UUIDs are amdsmi's) and de-duplicated.

The package prints to stdout and raises ``KeyError`` (not ``ImportError``) at import when
libamd_smi.so is missing, so it is imported lazily, quietly, and any failure is reported as
``MeterUnavailable``.

API relied on (signatures from the amdsmi 7.0.2 wheel's ``amdsmi/amdsmi_interface.py``,
which the tests autospec; units from the sources named):
``amdsmi_init()``, ``amdsmi_shut_down()``, ``amdsmi_get_processor_handles()``,
``amdsmi_get_gpu_device_uuid(h)``, ``amdsmi_get_gpu_asic_info(h)["market_name"]``,
``amdsmi_get_energy_count(h)`` (ROCm amdsmi docs "Power Queries"; ml-energy/zeus
``zeus/device/gpu/amd.py``: ``accumulator x resolution`` is uJ, key ``power`` before 6.2.1),
``amdsmi_get_power_info(h)`` (W, "N/A" where unsupported; zeus),
``amdsmi_get_power_cap_info(h)["power_cap"]`` (uW; zeus),
``amdsmi_get_clock_info(h, AmdSmiClkType.GFX|MEM)["clk"]`` (MHz; zeus),
``amdsmi_get_temp_metric(h, AmdSmiTemperatureType.HOTSPOT, AmdSmiTemperatureMetric.CURRENT)``
(deg C; zeus), ``amdsmi_get_violation_status(h)`` (``active_*`` booleans), and
``AmdSmiException`` as the base of the library's errors (py-interface README).
"""

from __future__ import annotations

import contextlib
import io
import time

from hardware_profiles.identity import normalise_uuid
from profiler.errors import MeterUnavailable
from profiler.meters.gpu import GpuMeter, GpuRecord
from profiler.meters.registry import MeterSpec, register

METHOD_COUNTER = "amdsmi_counter"
METHOD_INTEGRAL = "amdsmi_power_integral"
#: amdsmi_get_power_info keys, best first: instantaneous, then the older 1 s average.
POWER_KEYS = ("current_socket_power", "average_socket_power")
#: amdsmi_get_violation_status flags that mean the GPU ran slower than it could.
VIOLATIONS = {"active_ppt_pwr": "power_cap", "active_socket_thrm": "socket_thermal",
              "active_prochot_thrm": "prochot_thermal", "active_vr_thrm": "vr_thermal",
              "active_hbm_thrm": "hbm_thermal"}
INSTALL_HINT = ("install ROCm's amd-smi library (package amd-smi-lib) and pip install amdsmi "
                "(pip install 'etameter[amd]'), or set ROCM_PATH to the ROCm install")


def load_amdsmi():
    """Import amdsmi quietly, or raise MeterUnavailable with the fix."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):  # it prints when libamd_smi.so is missing
            import amdsmi
    except ImportError as e:
        raise MeterUnavailable(f"amdsmi is not importable: {e}; {INSTALL_HINT}") from e
    except Exception as e:  # KeyError/OSError without libamd_smi.so, AttributeError on a mismatch
        printed = " ".join(out.getvalue().split())
        raise MeterUnavailable(f"amdsmi is not importable: {type(e).__name__}: {e}"
                               f"{' (' + printed + ')' if printed else ''}; {INSTALL_HINT}") from e
    return amdsmi


def _number(value) -> float | None:
    """amdsmi reports "N/A" for a reading a GPU lacks."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _uuid_key(uuid) -> str:
    return normalise_uuid(uuid).replace("-", "")


def energy_uj(reading: dict) -> float:
    """Microjoules from an ``amdsmi_get_energy_count`` result (any amdsmi version)."""
    raw = reading["energy_accumulator"] if "energy_accumulator" in reading else reading["power"]
    return float(raw) * float(reading["counter_resolution"])


class AmdSmiMeter(GpuMeter):
    """Energy of the run's AMD GPUs: the amdsmi energy counter and integrated power samples."""

    method_counter = METHOD_COUNTER
    method_integral = METHOD_INTEGRAL

    def __init__(self, uuids: list[str] | None = None, amdsmi=None, *, interval_s: float = 0.05,
                 tolerance: float = 0.05, clock=time.perf_counter):
        super().__init__(interval_s=interval_s, tolerance=tolerance, clock=clock)
        self._smi = amdsmi or load_amdsmi()
        try:
            self._smi.amdsmi_init()
        except Exception as e:  # AmdSmiLibraryException (driver not loaded, no permission)
            raise MeterUnavailable(f"amdsmi failed to initialise: {e}; check that the amdgpu "
                                   f"driver is loaded and /dev/kfd is readable") from e
        self._initialised = True
        try:
            self._gpus = self._resolve(uuids)
            for gpu in self._gpus:
                self._probe_capabilities(gpu)
        except Exception:
            self.close()
            raise
        self._ready()

    # -- set-up -------------------------------------------------------------------------------

    def _resolve(self, uuids: list[str] | None) -> list[GpuRecord]:
        smi = self._smi
        try:
            handles = list(smi.amdsmi_get_processor_handles())
            seen = [(normalise_uuid(smi.amdsmi_get_gpu_device_uuid(h)), h) for h in handles]
        except Exception as e:
            raise MeterUnavailable(f"amdsmi cannot list the GPUs: {e}") from e
        by_key = {_uuid_key(u): (u, h) for u, h in seen}
        if uuids:
            chosen = []
            for wanted in uuids:
                if _uuid_key(wanted) not in by_key:
                    known = ", ".join(u for u, _ in seen) or "none"
                    raise MeterUnavailable(f"amdsmi cannot find GPU {wanted} (it sees {known})")
                chosen.append(by_key[_uuid_key(wanted)])
        else:
            chosen = seen
        gpus: dict[str, GpuRecord] = {}
        for uuid, handle in chosen:
            if uuid not in gpus:  # one entry per physical GPU, however often it is named
                gpus[uuid] = GpuRecord(f"gpu:{len(gpus)}", uuid, self._name(handle), handle)
        if not gpus:
            raise MeterUnavailable("amdsmi sees no GPU")
        return list(gpus.values())

    def _name(self, handle) -> str:
        try:
            return str(self._smi.amdsmi_get_gpu_asic_info(handle)["market_name"])
        except Exception:
            return "AMD GPU"

    def _probe_capabilities(self, gpu: GpuRecord) -> None:
        smi = self._smi
        try:
            energy_uj(smi.amdsmi_get_energy_count(gpu.handle))
            gpu.counter = True
        except Exception:  # not supported (VM guests) or an unknown result layout
            gpu.counter = False
        try:
            info = smi.amdsmi_get_power_info(gpu.handle)
            gpu.power_source = next((k for k in POWER_KEYS if _number(info.get(k)) is not None), None)
        except Exception:
            gpu.power_source = None
        if not gpu.counter and gpu.power_source is None:
            raise MeterUnavailable(f"{gpu.name} reports neither an energy counter nor power "
                                   f"through amdsmi")
        try:
            cap_uw = _number(smi.amdsmi_get_power_cap_info(gpu.handle)["power_cap"])
            gpu.power_limit_w = cap_uw / 1e6 if cap_uw is not None else None
        except Exception:
            gpu.power_limit_w = None

    # -- the reads ----------------------------------------------------------------------------

    def _read_counter_j(self, gpu: GpuRecord) -> float:
        return energy_uj(self._smi.amdsmi_get_energy_count(gpu.handle)) / 1e6

    def _read_power_w(self, gpu: GpuRecord) -> float | None:
        if gpu.power_source is None:
            return None
        return _number(self._smi.amdsmi_get_power_info(gpu.handle).get(gpu.power_source))

    def _read_telemetry(self, gpu: GpuRecord) -> None:
        # Each reading is optional: a GPU or amdsmi version without it leaves the list empty.
        smi, h = self._smi, gpu.handle
        readings = (
            ("gfx_clock_mhz", lambda: smi.amdsmi_get_clock_info(h, smi.AmdSmiClkType.GFX)["clk"]),
            ("mem_clock_mhz", lambda: smi.amdsmi_get_clock_info(h, smi.AmdSmiClkType.MEM)["clk"]),
            ("temperature_c", lambda: smi.amdsmi_get_temp_metric(
                h, smi.AmdSmiTemperatureType.HOTSPOT, smi.AmdSmiTemperatureMetric.CURRENT)))
        for name, fn in readings:
            try:
                gpu.add(name, _number(fn()))
            except Exception:
                continue
        try:
            status = smi.amdsmi_get_violation_status(h)
            gpu.throttles.update(name for key, name in VIOLATIONS.items()
                                 if status.get(key) is True)
        except Exception:  # amdsmi before 6.4, or not supported on this GPU
            pass

    def _vendor_detail(self, gpu: GpuRecord) -> dict:
        return {"violations": sorted(gpu.throttles)}

    def _shutdown(self) -> None:
        self._smi.amdsmi_shut_down()


def _from_request(request) -> AmdSmiMeter:
    return AmdSmiMeter(uuids=list(request.gpu_uuids) or None, amdsmi=request.modules.get("amdsmi"))


register(MeterSpec("amdsmi", kinds=("amd",), priority=100, factory=_from_request))
