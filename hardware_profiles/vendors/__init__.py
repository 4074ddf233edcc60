"""GPU vendors: which library tells a GPU's identity, and which torch build drives it.

Each vendor module registers a :class:`GpuVendor` when imported. ``BUILTIN`` names the
modules of the built-in vendors; adding a vendor is a new module plus one line there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from hardware_profiles.identity import GpuIdentity, normalise_uuid

BUILTIN = (
    "hardware_profiles.vendors.nvidia",
    "hardware_profiles.vendors.amd",
)


@dataclass(frozen=True)
class GpuVendor:
    """``name`` is also the meter device kind (``nvidia``, ``amd``). ``drives_torch()`` says
    whether the installed torch runs this vendor's GPUs; ``read_gpus(module=None)`` lists every
    GPU the vendor library sees (``module`` injects a fake library in tests) or raises."""

    name: str
    drives_torch: Callable[[], bool]
    read_gpus: Callable[..., list[GpuIdentity]]


_VENDORS: dict[str, GpuVendor] = {}
_loaded = False


def register(vendor: GpuVendor) -> GpuVendor:
    _VENDORS[vendor.name] = vendor
    return vendor


def vendors() -> list[GpuVendor]:
    global _loaded
    if not _loaded:
        for module in BUILTIN:
            importlib.import_module(module)
        _loaded = True
    return list(_VENDORS.values())


def torch_vendor() -> GpuVendor | None:
    """The vendor whose GPUs the installed torch drives (``torch.cuda`` means CUDA or ROCm)."""
    return next((v for v in vendors() if v.drives_torch()), None)


def identify(index: int) -> GpuIdentity:
    """The identity of torch's GPU ``index``: its vendor library's record, matched by UUID or
    PCI bus id; else what torch itself reports (name and memory only)."""
    import torch

    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "")
    bus = _torch_pci_bus_id(props)
    vendor = torch_vendor()
    if vendor is not None:
        try:
            gpus = vendor.read_gpus()
        except Exception:  # no vendor library: torch's view is the evidence
            gpus = []
        for g in gpus:
            if (uuid and normalise_uuid(g.uuid) == normalise_uuid(uuid)) or \
                    (bus and g.pci_bus_id and g.pci_bus_id.lower() == bus):
                return g
    return GpuIdentity(index, props.name, uuid, None, None, props.total_memory / 2**30,
                       vendor=vendor.name if vendor else "unknown", pci_bus_id=bus,
                       source="torch")


def _torch_pci_bus_id(props) -> str | None:
    """``0000:3b:00.0``-style bus id from torch's device properties, where it has them."""
    parts = [getattr(props, k, None) for k in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if any(p is None for p in parts):
        return None
    return f"{parts[0]:04x}:{parts[1]:02x}:{parts[2]:02x}.0"
