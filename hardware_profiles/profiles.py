"""Device profiles loaded from the TOML data files beside this module.

A profile holds a device's dense peak FLOP/s per precision, memory, TDP and the source of each
figure. Loading validates every entry and names the file, entry and field in the error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from profiler.errors import ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DeviceProfile:
    """An accelerator (GPU) profile. Peaks in FLOP/s (or OP/s for integer precisions), dense."""

    id: str
    display_name: str
    vendor: str
    names: tuple[str, ...]
    pci_device_ids: tuple[int, ...]
    peak_flops_per_s: dict[str, float]
    memory_gib: float | None
    memory_bandwidth_gb_per_s: float | None
    tdp_w: float | None
    sources: dict[str, str]
    unverified: tuple[str, ...] = ()
    origin: str = ""

    def peak(self, precision: str) -> float | None:
        return self.peak_flops_per_s.get(precision)


@dataclass(frozen=True)
class CpuProfile:
    """A CPU microarchitecture: FLOPs per cycle per core and a reference SKU for estimates."""

    id: str
    display_name: str
    vendor_id: str
    cpu_family: int
    models: tuple[int, ...]
    flops_per_cycle: dict[str, float]
    reference_sku: dict
    sources: dict[str, str]
    origin: str = ""

    @property
    def tdp_per_core_w(self) -> float:
        return self.reference_sku["tdp_w"] / self.reference_sku["cores"]


@dataclass(frozen=True)
class ProfileSet:
    devices: tuple[DeviceProfile, ...] = ()
    cpus: tuple[CpuProfile, ...] = ()
    files: tuple[str, ...] = field(default_factory=tuple)


def _require(entry: dict, key: str, where: str, kind: type | tuple):
    if key not in entry:
        raise ProfileError(f"{where}: missing field '{key}'")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProfileError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _non_negative_number(value, where: str, key: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ProfileError(f"{where}: field '{key}' must be a number, got {value!r}")
    if value < 0:
        raise ProfileError(f"{where}: field '{key}' must not be negative, got {value}")
    return float(value)


def _parse_pci_id(raw, where: str) -> int:
    try:
        return int(raw, 16) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError) as e:
        raise ProfileError(f"{where}: pci_device_ids entry {raw!r} is not a hex id like '0x2330'") from e


def _parse_device(entry: dict, where: str) -> DeviceProfile:
    ident = _require(entry, "id", where, str)
    where = f"{where} (id {ident})"
    peaks_tflops = _require(entry, "peak_tflops", where, dict)
    unknown = set(peaks_tflops) - set(PRECISIONS)
    if unknown:
        raise ProfileError(
            f"{where}: unknown precision(s) {sorted(unknown)} in peak_tflops; use {PRECISIONS}"
        )
    peaks = {
        p: _non_negative_number(v, where, f"peak_tflops.{p}") * 1e12 for p, v in peaks_tflops.items()
    }
    sources = _require(entry, "sources", where, dict)
    if "peak_tflops" not in sources:
        raise ProfileError(f"{where}: sources.peak_tflops is missing: every figure needs a source")
    return DeviceProfile(
        id=ident,
        display_name=_require(entry, "display_name", where, str),
        vendor=_require(entry, "vendor", where, str),
        names=tuple(_require(entry, "names", where, list)),
        pci_device_ids=tuple(_parse_pci_id(x, where) for x in entry.get("pci_device_ids", [])),
        peak_flops_per_s=peaks,
        memory_gib=_non_negative_number(entry.get("memory_gib"), where, "memory_gib"),
        memory_bandwidth_gb_per_s=_non_negative_number(
            entry.get("memory_bandwidth_gb_per_s"), where, "memory_bandwidth_gb_per_s"
        ),
        tdp_w=_non_negative_number(entry.get("tdp_w"), where, "tdp_w"),
        sources=dict(sources),
        unverified=tuple(entry.get("unverified", [])),
        origin=where,
    )


def _parse_cpu(entry: dict, where: str) -> CpuProfile:
    ident = _require(entry, "id", where, str)
    where = f"{where} (id {ident})"
    fpc = _require(entry, "flops_per_cycle", where, dict)
    for p, v in fpc.items():
        if p not in PRECISIONS:
            raise ProfileError(f"{where}: unknown precision '{p}' in flops_per_cycle")
        _non_negative_number(v, where, f"flops_per_cycle.{p}")
    sku = _require(entry, "reference_sku", where, dict)
    for key in ("name", "cores", "tdp_w"):
        if key not in sku:
            raise ProfileError(f"{where}: reference_sku is missing '{key}'")
    if _non_negative_number(sku["cores"], where, "reference_sku.cores") == 0:
        raise ProfileError(f"{where}: reference_sku.cores must be positive")
    _non_negative_number(sku["tdp_w"], where, "reference_sku.tdp_w")
    return CpuProfile(
        id=ident,
        display_name=_require(entry, "display_name", where, str),
        vendor_id=_require(entry, "vendor_id", where, str),
        cpu_family=_require(entry, "cpu_family", where, int),
        models=tuple(_require(entry, "models", where, list)),
        flops_per_cycle={p: float(v) for p, v in fpc.items()},
        reference_sku=dict(sku),
        sources=dict(_require(entry, "sources", where, dict)),
        origin=where,
    )


def parse_profile_text(text: str, origin: str) -> ProfileSet:
    """Parse one profile file's TOML text; ``origin`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{origin}: not valid TOML: {e}") from e
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise ProfileError(f"{origin}: 'schema = {SCHEMA_VERSION}' expected, got {schema!r}")
    devices = tuple(
        _parse_device(e, f"{origin} [[device]] #{i + 1}") for i, e in enumerate(data.get("device", []))
    )
    cpus = tuple(_parse_cpu(e, f"{origin} [[cpu]] #{i + 1}") for i, e in enumerate(data.get("cpu", [])))
    return ProfileSet(devices=devices, cpus=cpus, files=(origin,))


def load_profile_file(path: str | Path) -> ProfileSet:
    """Load a user profile file (TOML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ProfileError(f"cannot read profile file {path}: {e.strerror}") from e
    return parse_profile_text(text, str(path))


@lru_cache(maxsize=1)
def builtin_profiles() -> ProfileSet:
    """The profiles shipped with etameter (read lazily, once)."""
    devices: list[DeviceProfile] = []
    cpus: list[CpuProfile] = []
    files: list[str] = []
    data_dir = resources.files("hardware_profiles") / "data"
    for item in sorted(data_dir.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            parsed = parse_profile_text(item.read_text(), f"hardware_profiles/data/{item.name}")
            devices += parsed.devices
            cpus += parsed.cpus
            files += parsed.files
    return ProfileSet(tuple(devices), tuple(cpus), tuple(files))
