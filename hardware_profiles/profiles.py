"""Device profiles loaded from the TOML data files beside this module.

A profile holds a device's dense peak FLOP/s per precision, memory, TDP and the source of each
figure. Loading validates every entry (hardware_profiles/validate.py: types, finite numbers,
plausible ranges) and names the file, entry and field in the error.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hardware_profiles import validate as check
from hardware_profiles.release import parse_release_date
from profiler.errors import ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
SCHEMA_VERSION = 1
USER_PROFILE_DIR_ENV = "ETAMETER_PROFILES"


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
    release_date: str | None = None  # ISO date, hardware_profiles/release.py

    def peak(self, precision: str) -> float | None:
        return self.peak_flops_per_s.get(precision)


@dataclass(frozen=True)
class CpuProfile:
    """A CPU microarchitecture: FLOPs per cycle per core and a reference SKU for estimates.

    Matched by one of: x86 ``vendor_id`` + ``cpu_family`` + a model in ``models`` (single
    numbers) or ``model_ranges`` (inclusive); Arm ``cpu_implementer`` + a part in
    ``cpu_parts``; Apple Silicon ``brand_prefixes`` ("Apple M2" matches "Apple M2 Pro").
    ``requires`` names, per precision, the [[isa]] entry whose flags the CPU must show for
    that figure to count (e.g. ``bf16 = "amx-bf16"``): a VM that hides AMX gets no AMX peak.
    """

    id: str
    display_name: str
    vendor_id: str | None
    cpu_family: int | None
    models: tuple[int, ...]
    flops_per_cycle: dict[str, float]
    reference_sku: dict
    sources: dict[str, str]
    origin: str = ""
    model_ranges: tuple[tuple[int, int], ...] = ()
    cpu_implementer: int | None = None
    cpu_parts: tuple[int, ...] = ()
    brand_prefixes: tuple[str, ...] = ()
    requires: dict[str, str] = field(default_factory=dict)
    #: A nominal clock for CPUs that expose none (Apple Silicon); used only as a last resort.
    nominal_ghz: float | None = None
    unverified: tuple[str, ...] = ()

    @property
    def tdp_per_core_w(self) -> float:
        return self.reference_sku["tdp_w"] / self.reference_sku["cores"]

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this profile gives FLOPs (or OPs) per cycle for."""
        return tuple(p for p in PRECISIONS if p in self.flops_per_cycle)

    def matches_model(self, model: int | None) -> bool:
        return model is not None and (model in self.models
                                      or any(lo <= model <= hi for lo, hi in self.model_ranges))

    def matches_brand(self, brand: str | None) -> bool:
        """A whole-word prefix match: "Apple M1" matches "Apple M1 Pro", never "Apple M10"."""
        if not brand:
            return False
        norm = " ".join(brand.split()).lower()
        return any(norm == pre.lower() or norm.startswith(pre.lower() + " ")
                   for pre in (" ".join(b.split()) for b in self.brand_prefixes))


@dataclass(frozen=True)
class IsaProfile:
    """FLOPs per cycle per core that an instruction-set extension makes possible."""

    id: str
    flags: tuple[str, ...]
    flops_per_cycle: dict[str, float]
    sources: dict[str, str]


@dataclass(frozen=True)
class ProfileSet:
    devices: tuple[DeviceProfile, ...] = ()
    cpus: tuple[CpuProfile, ...] = ()
    files: tuple[str, ...] = field(default_factory=tuple)
    isas: tuple[IsaProfile, ...] = ()

    def merged(self, other: "ProfileSet") -> "ProfileSet":
        """``other``'s profiles replace ours that share an id or a device name."""
        ids = {d.id for d in other.devices}
        names = {" ".join(n.lower().split()) for d in other.devices for n in d.names}
        kept = tuple(d for d in self.devices if d.id not in ids
                     and not names & {" ".join(n.lower().split()) for n in d.names})
        cpu_ids = {c.id for c in other.cpus}
        isa_ids = {i.id for i in other.isas}
        return ProfileSet(other.devices + kept,
                          other.cpus + tuple(c for c in self.cpus if c.id not in cpu_ids),
                          self.files + other.files,
                          other.isas + tuple(i for i in self.isas if i.id not in isa_ids))


def _parse_device(entry: dict, where: str) -> DeviceProfile:
    ident = check.require(entry, "id", where, str)
    where = f"{where} (id {ident})"
    peaks_tflops = check.require(entry, "peak_tflops", where, dict)
    unknown = set(peaks_tflops) - set(PRECISIONS)
    if unknown:
        raise ProfileError(
            f"{where}: unknown precision(s) {sorted(unknown)} in peak_tflops; use {PRECISIONS}"
        )
    peaks = {p: check.number(v, where, f"peak_tflops.{p}") * 1e12 for p, v in peaks_tflops.items()}
    sources = check.sources(entry, where)
    needed = ["peak_tflops"]
    if "memory_gib" in entry or "memory_bandwidth_gb_per_s" in entry:
        needed.append("memory")
    if "tdp_w" in entry:
        needed.append("tdp_w")
    for key in needed:
        if not sources.get(key):
            raise ProfileError(f"{where}: sources.{key} is missing: every figure needs a source")
    return DeviceProfile(
        id=ident,
        display_name=check.require(entry, "display_name", where, str),
        vendor=check.require(entry, "vendor", where, str),
        names=check.strings(entry, "names", where, non_empty=True),
        pci_device_ids=tuple(check.parse_pci_id(x, where) for x in entry.get("pci_device_ids", [])),
        peak_flops_per_s=peaks,
        memory_gib=check.number(entry.get("memory_gib"), where, "memory_gib"),
        memory_bandwidth_gb_per_s=check.number(entry.get("memory_bandwidth_gb_per_s"),
                                                       where, "memory_bandwidth_gb_per_s"),
        tdp_w=check.number(entry.get("tdp_w"), where, "tdp_w"),
        sources=dict(sources),
        unverified=check.strings(entry, "unverified", where, required=False),
        origin=where, release_date=parse_release_date(entry, sources, where),
    )


def _flops_per_cycle(entry: dict, where: str) -> dict[str, float]:
    """The validated ``flops_per_cycle`` table of a [[cpu]] or [[isa]] entry."""
    fpc = check.require(entry, "flops_per_cycle", where, dict)
    for p in fpc:
        if p not in PRECISIONS:
            raise ProfileError(f"{where}: unknown precision '{p}' in flops_per_cycle")
    return {p: check.flops_per_cycle(v, where, f"flops_per_cycle.{p}") for p, v in fpc.items()}


CPU_SOURCE_KEYS = ("flops_per_cycle", "reference_sku")


def _parse_cpu(entry: dict, where: str) -> CpuProfile:
    ident = check.require(entry, "id", where, str)
    where = f"{where} (id {ident})"
    fpc = _flops_per_cycle(entry, where)
    sku = check.require(entry, "reference_sku", where, dict)
    for key in ("name", "cores", "tdp_w"):
        if key not in sku:
            raise ProfileError(f"{where}: reference_sku is missing '{key}'")
    check.cores(sku["cores"], where)
    check.number(sku["tdp_w"], where, "reference_sku.tdp_w")
    if "base_ghz" in sku:
        check.number(sku["base_ghz"], where, "reference_sku.base_ghz")
    sources = check.sources(entry, where)
    for key in CPU_SOURCE_KEYS + (("nominal_ghz",) if "nominal_ghz" in entry else ()):
        if not sources.get(key):
            raise ProfileError(f"{where}: sources.{key} is missing: every figure needs a source")

    x86 = any(k in entry for k in ("vendor_id", "cpu_family", "models", "model_ranges"))
    arm = any(k in entry for k in ("cpu_implementer", "cpu_parts"))
    apple = "brand_prefixes" in entry
    if x86 + arm + apple != 1:
        raise ProfileError(f"{where}: match by exactly one of vendor_id + cpu_family + models "
                           f"(x86), cpu_implementer + cpu_parts (Arm) or brand_prefixes (Apple)")
    vendor_id = family = implementer = None
    models, ranges, parts, brands = (), (), (), ()
    if x86:
        vendor_id = check.require(entry, "vendor_id", where, str)
        family = check.require(entry, "cpu_family", where, int)
        models, ranges = check.model_list(entry, where)
    elif arm:
        implementer = check.hex_id(check.require(entry, "cpu_implementer", where, (int, str)), where,
                              "cpu_implementer", "0x41")
        parts = tuple(check.hex_id(x, where, "cpu_parts", "0xd40")
                      for x in check.require(entry, "cpu_parts", where, list))
        if not parts:
            raise ProfileError(f"{where}: field 'cpu_parts' is empty")
    else:
        brands = tuple(check.require(entry, "brand_prefixes", where, list))
        if not brands or not all(isinstance(b, str) and b.strip() for b in brands):
            raise ProfileError(f"{where}: field 'brand_prefixes' must list non-empty names "
                               f"such as \"Apple M2\"")

    requires = entry.get("requires", {})
    if not isinstance(requires, dict):
        raise ProfileError(f"{where}: field 'requires' must map a precision to an [[isa]] id")
    for p, isa in requires.items():
        if p not in fpc:
            raise ProfileError(f"{where}: requires.{p} names a precision that flops_per_cycle "
                               f"does not give")
        if not isinstance(isa, str) or not isa:
            raise ProfileError(f"{where}: requires.{p} must be an [[isa]] id such as 'amx-bf16'")
    nominal = entry.get("nominal_ghz")
    if nominal is not None:
        nominal = check.number(nominal, where, "nominal_ghz")
    unverified = check.strings(entry, "unverified", where, required=False)
    return CpuProfile(
        id=ident, display_name=check.require(entry, "display_name", where, str), vendor_id=vendor_id,
        cpu_family=family, models=models, flops_per_cycle=fpc, reference_sku=dict(sku),
        sources=dict(sources), origin=where, model_ranges=ranges, cpu_implementer=implementer,
        cpu_parts=parts, brand_prefixes=brands, requires=dict(requires), nominal_ghz=nominal,
        unverified=unverified)


def _parse_isa(entry: dict, where: str) -> IsaProfile:
    ident = check.require(entry, "id", where, str)
    where = f"{where} (id {ident})"
    fpc = _flops_per_cycle(entry, where)
    return IsaProfile(ident, check.strings(entry, "flags", where, non_empty=True), fpc,
                      check.sources(entry, where))


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
    isas = tuple(_parse_isa(e, f"{origin} [[isa]] #{i + 1}") for i, e in enumerate(data.get("isa", [])))
    unknown = set(data) - {"schema", "device", "cpu", "isa"}
    if unknown:
        raise ProfileError(f"{origin}: unknown top-level key(s) {sorted(unknown)}; "
                           "expected [[device]], [[cpu]] or [[isa]] entries")
    return ProfileSet(devices=devices, cpus=cpus, files=(origin,), isas=isas)


def load_profile_file(path: str | Path) -> ProfileSet:
    """Load a user profile file (TOML)."""
    from profiler.files import check_input_file

    path = check_input_file(path, "profile file", ProfileError,
                            missing=f"cannot read profile file {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"cannot read profile file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ProfileError(f"profile file {path} is not UTF-8 text (byte {e.start}): save it "
                           "as UTF-8 TOML") from None
    return parse_profile_text(text, str(path))


@lru_cache(maxsize=1)
def builtin_profiles() -> ProfileSet:
    """The profiles shipped with etameter (read lazily, once)."""
    merged = ProfileSet()
    data_dir = resources.files("hardware_profiles") / "data"
    for item in sorted(data_dir.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            parsed = parse_profile_text(item.read_text(encoding="utf-8"),
                                        f"hardware_profiles/data/{item.name}")
            merged = ProfileSet(merged.devices + parsed.devices, merged.cpus + parsed.cpus,
                                merged.files + parsed.files, merged.isas + parsed.isas)
    return merged


def user_profile_dir() -> Path:
    """``$ETAMETER_PROFILES`` or ``~/.config/etameter/profiles``."""
    return Path(os.environ.get(USER_PROFILE_DIR_ENV)
                or Path.home() / ".config" / "etameter" / "profiles")


def load_profiles(extra_files: list[str | Path] | tuple = ()) -> ProfileSet:
    """Built-in profiles, then the user directory's ``*.toml``, then ``extra_files``.

    Later sources win: a user's profile for a device replaces the built-in one.
    """
    merged = builtin_profiles()
    directory = user_profile_dir()
    if os.environ.get(USER_PROFILE_DIR_ENV) and not directory.is_dir():
        raise ProfileError(f"${USER_PROFILE_DIR_ENV} is {directory}, which "
                           f"{'is not a folder' if directory.exists() else 'does not exist'}: "
                           f"create it (a folder of *.toml profiles) or unset {USER_PROFILE_DIR_ENV}")
    user_files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    for path in [*user_files, *map(Path, extra_files)]:
        merged = merged.merged(load_profile_file(path))
    return merged
