"""AMD GPUs: identity through AMD SMI (the ``amdsmi`` package, ROCm's libamd_smi.so).

``amdsmi_get_gpu_asic_info`` gives the market name (from libdrm's amdgpu.ids, e.g.
"AMD Instinct MI300X") and the PCI device id (a hex string such as ``"0x74a1"`` in amdsmi
7.x, an int in older versions); ``amdsmi_get_gpu_device_bdf`` the bus id
(``0000:0c:00.0``); ``amdsmi_get_power_cap_info`` the power cap in uW; and
``amdsmi_get_gpu_memory_total(h, AmdSmiMemoryType.VRAM)`` the memory in bytes.
"""

from __future__ import annotations

import contextlib
import io

from hardware_profiles.identity import GpuIdentity
from hardware_profiles.vendors import GpuVendor, register


def _optional(fn):
    try:
        return fn()
    except Exception:  # a reading amdsmi cannot give is simply absent from the evidence
        return None


def _device_id(value) -> int | None:
    """``"0x74a1"`` / ``29857`` / ``"N/A"`` -> 0x74a1 / 0x74a1 / None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 16)
    except ValueError:
        return None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_gpus(amdsmi=None) -> list[GpuIdentity]:
    """Every GPU amdsmi sees, with the evidence detection uses. ``amdsmi``: the amdsmi module
    (default: the real one, initialised and shut down here)."""
    own = amdsmi is None
    if own:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints when libamd_smi.so is missing
            import amdsmi  # raises KeyError or OSError, not ImportError, without libamd_smi.so
        amdsmi.amdsmi_init()
    try:
        gpus = []
        for i, h in enumerate(amdsmi.amdsmi_get_processor_handles()):
            asic = _optional(lambda: amdsmi.amdsmi_get_gpu_asic_info(h)) or {}
            cap_uw = _optional(lambda: _number(amdsmi.amdsmi_get_power_cap_info(h)["power_cap"]))
            mem = _optional(lambda: _number(amdsmi.amdsmi_get_gpu_memory_total(
                h, amdsmi.AmdSmiMemoryType.VRAM)))
            bus = _optional(lambda: str(amdsmi.amdsmi_get_gpu_device_bdf(h)).lower())
            gpus.append(GpuIdentity(
                i, str(asic.get("market_name") or "AMD GPU"),
                str(amdsmi.amdsmi_get_gpu_device_uuid(h)),
                _device_id(asic.get("device_id")),
                cap_uw / 1e6 if cap_uw else None,
                mem / 2**30 if mem else None,
                vendor="amd", pci_bus_id=bus, source="amdsmi"))
        return gpus
    finally:
        if own:
            amdsmi.amdsmi_shut_down()


def _drives_torch() -> bool:
    import torch

    return torch.version.hip is not None


register(GpuVendor("amd", drives_torch=_drives_torch, read_gpus=read_gpus))
