"""NVIDIA GPUs: identity through NVML (nvidia-ml-py, module ``pynvml``)."""

from __future__ import annotations

from hardware_profiles.identity import GpuIdentity
from hardware_profiles.vendors import GpuVendor, register


def _optional(fn):
    try:
        return fn()
    except Exception:  # a reading NVML cannot give is simply absent from the evidence
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_gpus(nvml=None) -> list[GpuIdentity]:
    """Every GPU NVML sees, with the evidence detection uses. ``nvml``: a pynvml module
    (default: the real one, initialised and shut down here)."""
    own = nvml is None
    if own:
        import pynvml as nvml

        nvml.nvmlInit()
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            pci = _optional(lambda: nvml.nvmlDeviceGetPciInfo(h))
            limit_mw = _optional(lambda: nvml.nvmlDeviceGetPowerManagementLimit(h))
            mem = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(h).total)
            bus = _optional(lambda: _text(pci.busId)) if pci is not None else None
            gpus.append(GpuIdentity(
                i, _text(nvml.nvmlDeviceGetName(h)), _text(nvml.nvmlDeviceGetUUID(h)),
                pci.pciDeviceId >> 16 if pci is not None else None,
                limit_mw / 1e3 if limit_mw is not None else None,
                mem / 2**30 if mem is not None else None,
                vendor="nvidia", pci_bus_id=_bus_id(bus), source="nvml"))
        return gpus
    finally:
        if own:
            nvml.nvmlShutdown()


def _bus_id(raw: str | None) -> str | None:
    """NVML's ``00000000:3B:00.0`` -> ``0000:3b:00.0``."""
    if not raw or not isinstance(raw, str):
        return None
    domain, _, rest = raw.partition(":")
    return f"{domain[-4:]}:{rest}".lower() if rest else raw.lower()


def _drives_torch() -> bool:
    import torch

    return torch.version.cuda is not None and torch.version.hip is None


register(GpuVendor("nvidia", drives_torch=_drives_torch, read_gpus=read_gpus))
