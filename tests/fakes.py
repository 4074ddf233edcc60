"""Fakes at the hardware boundary: an autospec'd pynvml whose counters follow a script."""

from __future__ import annotations

from unittest import mock

import pynvml


class FakeGpu:
    def __init__(self, uuid: str, name: str = "NVIDIA H100 80GB HBM3", pci_device_id: int = 0x2330,
                 energy_mj: list[int] | None = None, energy_supported: bool = True):
        self.uuid, self.name, self.pci_device_id = uuid, name, pci_device_id
        self.energy_mj = list(energy_mj or [0])
        self.energy_supported = energy_supported
        self.reads = 0

    def next_energy(self) -> int:
        if not self.energy_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        value = self.energy_mj[min(self.reads, len(self.energy_mj) - 1)]
        self.reads += 1
        return value


def fake_nvml(gpus: list[FakeGpu], init_error: Exception | None = None):
    """An autospec of the real pynvml module, so a call with a wrong signature fails."""
    nv = mock.create_autospec(pynvml, instance=False)
    nv.NVMLError = pynvml.NVMLError
    if init_error is not None:
        nv.nvmlInit.side_effect = init_error
    by_uuid = {"GPU-" + g.uuid: g for g in gpus}
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
    return nv
