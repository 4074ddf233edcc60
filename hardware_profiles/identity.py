"""What a GPU is: its identity as its vendor's library reports it.

The bottom layer of etameter, with :mod:`profiler.errors`: detection matches identities to
profiles, meters find their devices by UUID, and the store keys devices by them.
"""

from __future__ import annotations

from dataclasses import dataclass


def normalise_uuid(uuid: str | bytes) -> str:
    """``GPU-ABC...`` / ``abc...`` / bytes -> ``abc...`` (lower case, no ``GPU-`` prefix)."""
    if isinstance(uuid, bytes):
        uuid = uuid.decode()
    uuid = str(uuid).strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


@dataclass(frozen=True)
class GpuIdentity:
    """One GPU as its vendor library (NVML, amdsmi) or torch reports it. Missing readings are
    None: a field the library cannot give is simply absent from the evidence."""

    index: int
    name: str
    uuid: str
    pci_device_id: int | None
    power_limit_w: float | None
    memory_gib: float | None
    vendor: str = "nvidia"
    pci_bus_id: str | None = None
    source: str = "nvml"
