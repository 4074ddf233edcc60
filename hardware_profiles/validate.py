"""Checks of a profile entry's fields: types, finite numbers and plausible ranges.

Every error names the file, the entry and the field, and says what was expected. The ranges
are wide (every real device sits far inside them); a figure outside one is almost surely in
the wrong unit (FLOP/s for TFLOP/s) or a typo, and would silently skew every MFU and eta.
"""

from __future__ import annotations

import math

from profiler.errors import ProfileError

#: field (its first dotted part) -> (low, high, unit); a value must be > low and < high.
RANGES = {
    "peak_tflops": (0.0, 1e5, "TFLOP/s (dense)"),
    "memory_bandwidth_gb_per_s": (0.0, 1e5, "GB/s"),
    "memory_gib": (0.0, 1e5, "GiB"),
    "tdp_w": (0.0, 1e5, "W"),
    "reference_sku.tdp_w": (0.0, 1e5, "W"),
    "reference_sku.base_ghz": (0.0, 10.0, "GHz"),
    "nominal_ghz": (0.0, 10.0, "GHz"),
}
#: FLOPs (or OPs) per cycle per core: positive, at most this (an AMX tile unit is 2048).
MAX_FLOPS_PER_CYCLE = 4096
#: Cores of a reference SKU: a positive whole number, at most this.
MAX_CORES = 4096


def require(entry: dict, key: str, where: str, kind: type | tuple):
    """``entry[key]``, which must be present and of ``kind`` (a bool is never a number)."""
    if key not in entry:
        raise ProfileError(f"{where}: missing field '{key}'")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProfileError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _range_of(key: str):
    return RANGES.get(key) or RANGES.get(key.split(".")[0])


def number(value, where: str, key: str) -> float | None:
    """A finite figure within its plausible range (``RANGES``); None stays None."""
    if value is None:
        return None
    low, high, unit = _range_of(key) or (None, None, None)
    in_unit = f" in {unit}" if unit else ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ProfileError(f"{where}: field '{key}' must be a number{in_unit}, got {value!r}")
    if not math.isfinite(value):
        raise ProfileError(f"{where}: field '{key}' must be a finite number{in_unit}, got {value}")
    if value < 0:
        raise ProfileError(f"{where}: field '{key}' must not be negative, got {value}")
    if low is not None and not low < value < high:
        raise ProfileError(f"{where}: field '{key}' = {value:g} is not plausible{in_unit}: it "
                           f"must be > {low:g} and < {high:g} (is it in the wrong unit?)")
    return float(value)


def flops_per_cycle(value, where: str, key: str) -> float:
    """FLOPs per cycle per core: finite, > 0 and at most ``MAX_FLOPS_PER_CYCLE``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ProfileError(f"{where}: field '{key}' must be a finite number of FLOPs per cycle "
                           f"per core, got {value!r}")
    if not 0 < value <= MAX_FLOPS_PER_CYCLE:
        raise ProfileError(f"{where}: field '{key}' = {value:g} is not plausible: FLOPs per cycle "
                           f"per core must be > 0 and <= {MAX_FLOPS_PER_CYCLE}")
    return float(value)


def cores(value, where: str, key: str = "reference_sku.cores") -> int:
    """A core count: a whole number from 1 to ``MAX_CORES``."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value != int(value)
            or not 1 <= value <= MAX_CORES):
        raise ProfileError(f"{where}: field '{key}' must be a whole number of cores from 1 to "
                           f"{MAX_CORES}, got {value!r}")
    return int(value)


def strings(entry: dict, key: str, where: str, *, required: bool = True,
            non_empty: bool = False) -> tuple[str, ...]:
    """A list of non-blank strings (``names``, ``flags``, ``unverified``)."""
    if key not in entry and not required:
        return ()
    value = require(entry, key, where, list)
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise ProfileError(f"{where}: field '{key}' must be a list of non-empty strings, "
                           f"got {value!r}")
    if non_empty and not value:
        raise ProfileError(f"{where}: field '{key}' is empty")
    return tuple(value)


def sources(entry: dict, where: str) -> dict[str, str]:
    """The ``sources`` table: each figure's source as text."""
    value = require(entry, "sources", where, dict)
    for k, v in value.items():
        if not isinstance(v, str):
            raise ProfileError(f"{where}: sources.{k} must be text (a citation or URL), got {v!r}")
    return dict(value)


def parse_pci_id(raw, where: str) -> int:
    try:
        return int(raw, 16) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError) as e:
        raise ProfileError(f"{where}: pci_device_ids entry {raw!r} is not a hex id like '0x2330'") from e


def hex_id(raw, where: str, key: str, example: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str):
        try:
            return int(raw, 16)
        except ValueError:
            pass
    raise ProfileError(f"{where}: field '{key}' entry {raw!r} is not a hex id like '{example}'")


def model_list(entry: dict, where: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """``models``: numbers and inclusive ``[first, last]`` ranges; plus ``model_ranges``."""
    singles, ranges = [], []
    raw = list(require(entry, "models", where, list))
    extra = entry.get("model_ranges", [])
    if not isinstance(extra, list):
        raise ProfileError(f"{where}: field 'model_ranges' must be a list of [first, last] ranges")
    for key, items in (("models", raw), ("model_ranges", extra)):
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and key == "models":
                if item < 0:
                    raise ProfileError(f"{where}: field 'models' entry {item} is negative")
                singles.append(item)
                continue
            if (isinstance(item, list) and len(item) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in item)):
                lo, hi = item
                if not 0 <= lo <= hi:
                    raise ProfileError(f"{where}: field '{key}' range {item} is reversed or "
                                       f"negative: need 0 <= first <= last")
                ranges.append((lo, hi))
                continue
            what = "a model number or " if key == "models" else ""
            raise ProfileError(f"{where}: field '{key}' entry {item!r} must be {what}an inclusive "
                               f"[first, last] range of model numbers, e.g. [16, 31]")
    if not singles and not ranges:
        raise ProfileError(f"{where}: field 'models' is empty: give model numbers or ranges")
    return tuple(singles), tuple(ranges)
