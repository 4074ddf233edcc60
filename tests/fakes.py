"""Fakes at the hardware boundary: an autospec'd pynvml whose counters and power follow a
script, and a fake clock."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace
from unittest import mock

import pynvml


class FakeClock:
    """A clock that advances only when told (or by ``step`` on every read)."""

    def __init__(self, start: float = 0.0, step: float = 0.0):
        self.now, self.step = start, step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeGpu:
    """A scripted GPU. ``energy_mj`` and ``power_mw`` are read in order (the last repeats)."""

    def __init__(self, uuid: str, name: str = "NVIDIA H100 80GB HBM3", *,
                 energy_mj: list[int] | None = None, energy_supported: bool = True,
                 power_mw: list[int] | None = None, instant_power: bool = True,
                 reasons: int = 0, sm_mhz: int = 1980, mem_mhz: int = 2619, temp_c: int = 45,
                 power_limit_mw: int = 700_000, bus_id: str | None = None,
                 power_errors: set[int] | None = None):
        self.uuid, self.name = uuid, name
        self.bus_id = bus_id  # None: fake_nvml numbers the GPUs in the order given
        #: power reads (0-based, counted over all reads) that raise a transient NVML error
        self.power_errors = set(power_errors or ())
        self.energy_mj = list(energy_mj or [0])
        self.energy_supported = energy_supported
        self.power_mw = list(power_mw or [100_000])
        self.instant_power = instant_power
        self.reasons, self.sm_mhz, self.mem_mhz, self.temp_c = reasons, sm_mhz, mem_mhz, temp_c
        self.power_limit_mw = power_limit_mw
        self.energy_reads = 0
        self.power_reads = 0

    def next_energy(self) -> int:
        if not self.energy_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        value = self.energy_mj[min(self.energy_reads, len(self.energy_mj) - 1)]
        self.energy_reads += 1
        return value

    def next_power(self) -> int:
        read = self.power_reads
        self.power_reads += 1
        if read in self.power_errors:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        return self.power_mw[min(read, len(self.power_mw) - 1)]


class FakeMig:
    """A MIG instance of ``parent``: NVML finds it by its ``MIG-`` UUID."""

    def __init__(self, uuid: str, parent: FakeGpu):
        self.uuid, self.parent = uuid, parent


def _field_values(gpu: FakeGpu, field_ids):
    if not gpu.instant_power:
        return [SimpleNamespace(nvmlReturn=pynvml.NVML_ERROR_NOT_SUPPORTED,
                                value=SimpleNamespace(uiVal=0))]
    return [SimpleNamespace(nvmlReturn=pynvml.NVML_SUCCESS,
                            value=SimpleNamespace(uiVal=gpu.next_power()))]


def fake_nvml(gpus: list[FakeGpu], init_error: Exception | None = None,
              migs: list[FakeMig] = ()):
    """An autospec of the real pynvml module, so a call with a wrong signature fails. NVML
    indexes GPUs in PCI bus order; ``gpus`` are given in that order."""
    nv = mock.create_autospec(pynvml, instance=False)
    for name in ("NVMLError", "NVML_SUCCESS", "NVML_FI_DEV_POWER_INSTANT", "NVML_CLOCK_SM",
                 "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU"):
        setattr(nv, name, getattr(pynvml, name))
    if init_error is not None:
        nv.nvmlInit.side_effect = init_error
    for i, g in enumerate(gpus):
        g.bus_id = g.bus_id or f"00000000:{0x18 + 0x10 * i:02X}:00.0"
    by_uuid = {"GPU-" + g.uuid: g for g in gpus} | {"MIG-" + m.uuid: m for m in migs}
    nv.nvmlDeviceGetCount.return_value = len(gpus)
    nv.nvmlDeviceGetHandleByIndex.side_effect = lambda i: gpus[i]

    def by_uuid_lookup(uuid):
        if uuid not in by_uuid:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return by_uuid[uuid]

    nv.nvmlDeviceGetHandleByUUID.side_effect = by_uuid_lookup
    nv.nvmlDeviceGetUUID.side_effect = lambda h: "GPU-" + h.uuid
    nv.nvmlDeviceGetName.side_effect = lambda h: h.name
    nv.nvmlDeviceGetTotalEnergyConsumption.side_effect = lambda h: h.next_energy()
    nv.nvmlDeviceGetFieldValues.side_effect = _field_values
    nv.nvmlDeviceGetPowerUsage.side_effect = lambda h: h.next_power()
    nv.nvmlDeviceGetEnforcedPowerLimit.side_effect = lambda h: h.power_limit_mw
    nv.nvmlDeviceGetClockInfo.side_effect = lambda h, kind: (
        h.sm_mhz if kind == pynvml.NVML_CLOCK_SM else h.mem_mhz)
    nv.nvmlDeviceGetTemperature.side_effect = lambda h, sensor: h.temp_c
    nv.nvmlDeviceGetCurrentClocksEventReasons.side_effect = lambda h: h.reasons
    nv.nvmlDeviceGetPciInfo.side_effect = lambda h: SimpleNamespace(busId=h.bus_id.encode())
    nv.nvmlDeviceIsMigDeviceHandle.side_effect = lambda h: ctypes.c_uint(isinstance(h, FakeMig))
    nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle.side_effect = lambda h: h.parent
    return nv
