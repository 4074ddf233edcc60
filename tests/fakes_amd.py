"""An autospec'd amdsmi whose energy counter and power follow a script.

The real ``amdsmi`` package cannot be imported without ROCm's libamd_smi.so (its wrapper binds
every C function at import). So the installed package is loaded here under a private name,
with ``ctypes.CDLL`` answering a stand-in library for that one import: the real function
signatures, enums and exception classes are then available, nothing is ever called in the
stand-in, and ``import amdsmi`` elsewhere is unaffected. The fake is
``mock.create_autospec`` of that module, so a call with a wrong signature fails.
"""

from __future__ import annotations

import importlib.util
import sys
from unittest import mock

_PRIVATE_NAME = "_etameter_amdsmi_api"


class _StandInFunction:
    restype = None
    argtypes = None


class _StandInLibrary:
    """Accepts the wrapper's ``lib.fn.restype = ...`` bindings; never called."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        fn = _StandInFunction()
        object.__setattr__(self, name, fn)
        return fn


def real_amdsmi_api():
    """The installed amdsmi package's Python API, loaded without libamd_smi.so."""
    if _PRIVATE_NAME in sys.modules:
        return sys.modules[_PRIVATE_NAME]
    found = importlib.util.find_spec("amdsmi")  # locates the package without running it
    if found is None:
        raise ImportError("the amdsmi package is needed to autospec it: pip install -e '.[dev]'")
    spec = importlib.util.spec_from_file_location(
        _PRIVATE_NAME, found.origin, submodule_search_locations=found.submodule_search_locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE_NAME] = module
    try:
        with mock.patch("ctypes.CDLL", _StandInLibrary):
            spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n.split(".")[0] == _PRIVATE_NAME]:
            del sys.modules[name]
        raise
    return module


API = real_amdsmi_api()


def not_supported():
    """The library's own 'not supported' error (AMDSMI_STATUS_NOT_SUPPORTED)."""
    return API.AmdSmiLibraryException(API.amdsmi_wrapper.AMDSMI_STATUS_NOT_SUPPORTED)


class FakeAmdGpu:
    """A scripted AMD GPU. ``energy_uj`` (counter units, times ``resolution``) and ``power_w``
    are read in order (the last repeats)."""

    def __init__(self, uuid: str, name: str = "AMD Instinct MI300X", *,
                 energy: list[int] | None = None, resolution: float = 15.3,
                 energy_supported: bool = True, legacy_energy_key: bool = False,
                 power_w: list[int] | None = None, instant_power: bool = True,
                 device_id: str = "0x74a1", bdf: str = "0000:0C:00.0",
                 power_cap_uw: int = 750_000_000, vram_bytes: int = 192 * 2**30,
                 gfx_mhz: int = 2100, mem_mhz: int = 1300, temp_c: int = 50,
                 violations: dict | None = None):
        self.uuid, self.name = uuid, name
        self.energy = list(energy or [0])
        self.resolution = resolution
        self.energy_supported = energy_supported
        self.legacy_energy_key = legacy_energy_key
        self.power_w = list(power_w or [300])
        self.instant_power = instant_power
        self.device_id, self.bdf = device_id, bdf
        self.power_cap_uw, self.vram_bytes = power_cap_uw, vram_bytes
        self.gfx_mhz, self.mem_mhz, self.temp_c = gfx_mhz, mem_mhz, temp_c
        self.violations = violations or {}
        self.energy_reads = 0
        self.power_reads = 0

    def next_energy(self) -> dict:
        if not self.energy_supported:
            raise not_supported()
        value = self.energy[min(self.energy_reads, len(self.energy) - 1)]
        self.energy_reads += 1
        key = "power" if self.legacy_energy_key else "energy_accumulator"
        return {key: value, "counter_resolution": self.resolution, "timestamp": 0}

    def next_power(self) -> dict:
        value = self.power_w[min(self.power_reads, len(self.power_w) - 1)]
        self.power_reads += 1
        current, average = (value, "N/A") if self.instant_power else ("N/A", value)
        return {"socket_power": value, "current_socket_power": current,
                "average_socket_power": average, "gfx_voltage": "N/A", "soc_voltage": "N/A",
                "mem_voltage": "N/A", "power_limit": self.power_cap_uw // 10**6}


def fake_amdsmi(gpus: list[FakeAmdGpu], init_error: Exception | None = None):
    """An autospec of the real amdsmi module, scripted by ``gpus``."""
    smi = mock.create_autospec(API, instance=False)
    for name in ("AmdSmiException", "AmdSmiLibraryException", "AmdSmiClkType",
                 "AmdSmiTemperatureType", "AmdSmiTemperatureMetric", "AmdSmiMemoryType"):
        setattr(smi, name, getattr(API, name))
    if init_error is not None:
        smi.amdsmi_init.side_effect = init_error
    smi.amdsmi_get_processor_handles.side_effect = lambda: list(gpus)
    smi.amdsmi_get_gpu_device_uuid.side_effect = lambda h: h.uuid
    smi.amdsmi_get_gpu_asic_info.side_effect = lambda h: {
        "market_name": h.name, "vendor_id": "0x1002", "device_id": h.device_id}
    smi.amdsmi_get_gpu_device_bdf.side_effect = lambda h: h.bdf
    smi.amdsmi_get_energy_count.side_effect = lambda h: h.next_energy()
    smi.amdsmi_get_power_info.side_effect = lambda h: h.next_power()
    smi.amdsmi_get_power_cap_info.side_effect = lambda h: {
        "power_cap": h.power_cap_uw, "default_power_cap": h.power_cap_uw, "dpm_cap": 0,
        "min_power_cap": 0, "max_power_cap": h.power_cap_uw}
    smi.amdsmi_get_gpu_memory_total.side_effect = lambda h, mem_type: h.vram_bytes
    smi.amdsmi_get_clock_info.side_effect = lambda h, clock_type: {
        "clk": h.gfx_mhz if clock_type == API.AmdSmiClkType.GFX else h.mem_mhz,
        "min_clk": 0, "max_clk": 0, "clk_locked": False, "clk_deep_sleep": 0}
    smi.amdsmi_get_temp_metric.side_effect = lambda h, sensor_type, metric: h.temp_c
    smi.amdsmi_get_violation_status.side_effect = lambda h: {
        key: h.violations.get(key, False) for key in
        ("active_prochot_thrm", "active_ppt_pwr", "active_socket_thrm", "active_vr_thrm",
         "active_hbm_thrm")}
    return smi
