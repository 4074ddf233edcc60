"""The meter registry: which meters serve which kind of device, best first.

A meter module registers a :class:`MeterSpec` when it is imported: the device kinds it serves
(``nvidia``, ``amd``, ``cpu``), its priority among the meters of a kind (higher is tried
first) and a factory that builds the meter from a :class:`MeterRequest` or raises
``MeterUnavailable`` with the reason. ``BUILTIN`` names the modules that register the
built-in meters; adding a meter is a new module plus one line there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from profiler.meters.base import Meter

#: Modules that register the built-in meters (imported on first use, not at import time).
BUILTIN = (
    "profiler.meters.nvml",
    "profiler.meters.amd",
    "profiler.meters.rapl",
    "profiler.meters.estimate",
)
#: Device kinds a meter can serve: the vendor of the device a run uses.
DEVICE_KINDS = ("nvidia", "amd", "cpu")


@dataclass(frozen=True)
class CpuPower:
    """Full-load power of this machine's CPU cores (W), for the estimate meter, with where it
    came from and, for a generic figure, the low/high band it may lie in."""

    watts: float
    source: str
    low_w: float | None = None
    high_w: float | None = None
    generic: bool = False


@dataclass(frozen=True)
class MeterRequest:
    """What a meter factory may use: the device kind, the GPUs' UUIDs, the CPU's power figure,
    where sysfs is (tests pass a fake root), and injected vendor modules (tests pass fakes,
    e.g. ``{"pynvml": fake}``)."""

    kind: str
    gpu_uuids: tuple[str, ...] = ()
    cpu_power: CpuPower | None = None
    cpu_power_reason: str | None = None
    sysfs_root: str = "/"
    probe_s: float = 0.5
    modules: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MeterSpec:
    """A registered meter: ``method`` (its name), the device ``kinds`` it serves, its
    ``priority`` within a kind, and ``factory(request) -> Meter``."""

    method: str
    kinds: tuple[str, ...]
    priority: int
    factory: Callable[[MeterRequest], Meter]


_SPECS: dict[str, MeterSpec] = {}
_loaded = False


def register(spec: MeterSpec) -> MeterSpec:
    """Add (or replace, by method name) a meter."""
    unknown = set(spec.kinds) - set(DEVICE_KINDS)
    if unknown:
        raise ValueError(f"meter {spec.method}: unknown device kind(s) {sorted(unknown)}; "
                         f"use {DEVICE_KINDS}")
    _SPECS[spec.method] = spec
    return spec


def specs(kind: str | None = None) -> list[MeterSpec]:
    """Registered meters (for one device kind), best first."""
    global _loaded
    if not _loaded:
        for module in BUILTIN:
            importlib.import_module(module)
        _loaded = True
    chosen = [s for s in _SPECS.values() if kind is None or kind in s.kinds]
    return sorted(chosen, key=lambda s: -s.priority)
