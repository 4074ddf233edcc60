"""One gate for every figure that enters the store, derived from the record's ``FIELDS``.

Every source of numbers passes here: the runner's and the tracker's windows and summaries
(:func:`admit_row`, :func:`admit_summary`: a value that cannot be true becomes null with the
reason and the ``impossible_value`` flag, never a number), and ``import``/``merge`` and
calibrations (:func:`check_records`, :func:`check_calibration`: the first value that cannot be
true is refused with its field named, and nothing is written). What a value may be is the
field's metadata in :mod:`profiler.measurement` (type, range, the flag that lets a ratio pass 1,
the power and energy a device can reach); this module holds no second table of rules.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from profiler.errors import StoreError
from profiler.measurement import (FIELDS, FLAG_IMPOSSIBLE, INTERVAL_KEYS,
                                  MAX_DEVICE_FLOPS_PER_S, MAX_DEVICE_POWER_W, MAX_FIGURE,
                                  MAX_OVER, MIN_CEILING_FLOPS_PER_S, Field)

_BY_KEY = {f.key: f for f in FIELDS}
#: Ids etameter writes (uuid hex, hash prefixes) and what a hand-made record may use: letters,
#: digits, ``_ . -``, no path separators, at most 128 characters.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: How far ahead of this machine's clock a recorded time may be (another host's clock skew).
FUTURE_SKEW = timedelta(days=1)
#: Run config entries that are counts, and figures: a report reads them as numbers.
CONFIG_COUNTS = ("batch_size", "seq_len", "new_tokens", "steps", "trials", "warmup_steps",
                 "window_steps", "world_size", "nproc", "layers", "seed")
CONFIG_FIGURES = ("flops_per_token", "target_window_s", "idle_s", "cooldown_s", "cpu_tdp_w")
#: A calibration's value by kind: its unit and the range a real device can show.
CALIBRATION_RANGES = {"matmul": ("flop_per_s", MIN_CEILING_FLOPS_PER_S, MAX_DEVICE_FLOPS_PER_S),
                      "copy": ("byte_per_s", 1e6, 1e14)}


def _flags(value) -> set[str]:
    if isinstance(value, str):
        return {f for f in value.split(",") if f}
    return set(value or ())


def why_impossible(f: Field, value, row: dict, flags: set[str]) -> str | None:
    """Why ``value`` cannot be ``f`` of ``row`` (with ``flags``), or None when it can be."""
    if value is None:
        return None
    if f.type is str:
        return None if isinstance(value, (str, list, tuple, dict)) else f"{value!r} is not text"
    if isinstance(value, bool) and f.type is int:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if f.type is int and not float(value).is_integer():
        return f"{value!r} is not a whole number"
    if not math.isfinite(value) or abs(value) > MAX_FIGURE:
        return f"{value!r} is not a finite figure (at most {MAX_FIGURE:g})"
    if f.low is not None and value < f.low:
        return (f"{value!r} is negative; it cannot be" if f.low == 0 else
                f"{value!r} is below {f.low:g}, the least it can be")
    if f.high is not None and value > f.high:
        if not (f.over_flag and f.over_flag in flags and value <= MAX_OVER):
            more = (f" without the {f.over_flag} flag (at most {MAX_OVER:g} with it)"
                    if f.over_flag else "")
            return f"{value!r} is above {f.high:g}{more}"
    limit = _limit(f, row)
    if limit is not None and abs(value) > limit:
        each = (f"{MAX_DEVICE_FLOPS_PER_S:g} FLOP/s" if f.limit == "flops" else
                f"{MAX_DEVICE_POWER_W:g} W")
        return (f"{value!r} is more than {limit:.4g}, the most {_devices(row)} device(s) can "
                f"reach at {each} each")
    return None


def _devices(row: dict) -> int:
    n = row.get("devices")
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1e6 else 1


def _limit(f: Field, row: dict) -> float | None:
    if f.limit == "power":
        return _devices(row) * MAX_DEVICE_POWER_W
    if f.limit == "flops":
        return _devices(row) * MAX_DEVICE_FLOPS_PER_S
    if f.limit == "energy":
        duration = row.get("duration_s")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) \
                and math.isfinite(duration) and duration >= 0:
            return _devices(row) * MAX_DEVICE_POWER_W * duration * 1.01 + 1e-6
    return None


# -- live figures: null with the reason, never a number ---------------------------------------

def admit_row(row: dict) -> dict:
    """A window row as it may be stored: each impossible figure null, its reason field (or the
    ``detail``'s ``impossible``) saying why, the ``impossible_value`` flag set; a ratio above 1
    but within ``MAX_OVER`` kept with its over-flag. Energy that cannot be true takes the
    figures computed from it along. Returns a new row; a clean row comes back equal."""
    out = dict(row)
    flags = _flags(out.get("flags"))
    for f in FIELDS:
        if f.over_flag and isinstance(out.get(f.key), (int, float)) and f.high is not None \
                and not isinstance(out[f.key], bool) and f.high < out[f.key] <= MAX_OVER:
            flags.add(f.over_flag)
    refused: dict[str, str] = {}
    for f in FIELDS:
        why = why_impossible(f, out.get(f.key), out, flags)
        if why is not None:
            refused[f.key] = why
    if "energy_j" in refused:
        for f in FIELDS:
            if f.energy and f.key not in refused and out.get(f.key) is not None:
                refused[f.key] = f"computed from an impossible energy ({refused['energy_j']})"
    if not refused:
        return out if not flags - _flags(row.get("flags")) else {**out, "flags": sorted(flags)}
    for key, why in refused.items():
        out[key] = None
        reason = _BY_KEY[key].reason
        if reason:
            out[reason] = f"an impossible {key} was not stored: {why}"
    detail = dict(out.get("detail") or {}) if isinstance(out.get("detail"), dict) else {}
    detail["impossible"] = {**detail.get("impossible", {}), **refused}
    out["detail"] = detail
    out["flags"] = sorted(flags | {FLAG_IMPOSSIBLE})
    return out


def admit_summary(summary: dict) -> dict:
    """A run's summary with every impossible figure null (reason, flag), as :func:`admit_row`."""
    problems = summary_problems(summary)
    if not problems:
        return summary
    out = dict(summary)
    for key, why in problems.items():
        out[key] = None
        reason = _BY_KEY[key].reason if key in _BY_KEY else None
        if reason:
            out[reason] = f"an impossible {key} was not stored: {why}"
    out["impossible"] = problems
    out["flags"] = sorted(_flags(out.get("flags")) | {FLAG_IMPOSSIBLE})
    return out


def summary_problems(summary: dict) -> dict[str, str]:
    """Key -> why, for every summary figure that cannot be true."""
    flags = _flags(summary.get("flags")) if isinstance(summary.get("flags"), (list, str)) else set()
    problems = {}
    for key, value in summary.items():
        if key in _BY_KEY:
            f = _BY_KEY[key]
        elif key.endswith(("_ci_low", "_ci_high")) and key.rsplit("_ci_", 1)[0] in INTERVAL_KEYS:
            # An interval over few windows may reach past a physical bound: only its sign and
            # finiteness are checked (it is of the geometric mean, so never below zero).
            f = Field(key, float, low=0.0)
        elif key in ("windows", "tokens_per_s_spread", "flops_per_token"):
            f = Field(key, int if key == "windows" else float, low=0.0)
        else:
            continue
        why = why_impossible(f, value, summary, flags)
        if why is not None:
            problems[key] = why
    if "flags" in summary and not isinstance(summary["flags"], (list, str, type(None))):
        problems["flags"] = f"{summary['flags']!r} is not a list of flags"
    return problems


# -- records from import and merge: refused with the field named ------------------------------

def check_time(where: str, value, *, required: bool = False, now: datetime | None = None) -> None:
    """An ISO date and time that is not in the future (beyond ``FUTURE_SKEW``)."""
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise StoreError(f"{where}: {value!r} is not an ISO date and time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise StoreError(f"{where}: {value!r} is not an ISO date and time") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if when > (now or datetime.now(timezone.utc)) + FUTURE_SKEW:
        raise StoreError(f"{where}: {value!r} is in the future; it cannot have happened yet")


def check_id(where: str, value) -> None:
    if not isinstance(value, str) or not ID_RE.match(value) or ".." in value:
        raise StoreError(f"{where}: {str(value)[:60]!r} is not an id (letters, digits, _ . -, "
                         "at most 128, no path separators)")


def check_result(where: str, row: dict) -> None:
    """One results row from a file: every figure as its field allows, or StoreError naming it."""
    flags = _flags(row.get("flags"))
    for key, value in row.items():
        f = _BY_KEY.get(key)
        why = why_impossible(f, value, row, flags) if f is not None else None
        if why is not None:
            raise StoreError(f"{where}.{key}: {why}")


def check_run(where: str, run: dict, config: dict | None, summary: dict | None) -> None:
    """A run row from a file: id, times, pid, verdict, config counts and summary figures."""
    check_id(f"{where}.id", run.get("id"))
    check_time(f"{where}.started_at", run.get("started_at"), required=True)
    check_time(f"{where}.finished_at", run.get("finished_at"))
    for key, low, high in (("pid", 1, 2 ** 31), ("quality_ok", 0, 1)):
        value = run.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and low <= value <= high):
            raise StoreError(f"{where}.{key}: {value!r} is not a {key} ({low} to {high})")
    if run.get("environment_id") is not None:
        check_id(f"{where}.environment_id", run["environment_id"])
    for key in CONFIG_COUNTS + CONFIG_FIGURES:
        value = (config or {}).get(key)
        if value is None:
            continue
        f = Field(key, int if key in CONFIG_COUNTS else float, low=0.0)
        why = why_impossible(f, value, {}, set())
        if why is not None:
            raise StoreError(f"{where}.config.{key}: {why}")
    for key, why in summary_problems(summary or {}).items():
        raise StoreError(f"{where}.summary.{key}: {why}")


def check_calibration(where: str, row: dict, *, stored: bool = True) -> None:
    """A measured ceiling: a known kind in its unit, a value a device can reach, whole sizes
    and repeats, a spread >= 0, and (``stored``) its id and a creation time in the past."""
    kind = row.get("kind")
    if kind not in CALIBRATION_RANGES:
        raise StoreError(f"{where}.kind: {kind!r} is not a calibration kind "
                         f"({', '.join(CALIBRATION_RANGES)})")
    unit, low, high = CALIBRATION_RANGES[kind]
    if row.get("unit") not in (None, unit):
        raise StoreError(f"{where}.unit: {row['unit']!r} is not {unit}, the unit of a {kind}")
    value = row.get("value")
    why = why_impossible(Field("value", float, low=low, high=high), value, {}, set())
    if value is None:
        why = "missing"
    if why is not None:
        raise StoreError(f"{where}.value: {why} ({unit}: no device measures that)")
    for key, kind_ in (("size", int), ("repeats", int), ("spread", float)):
        why = why_impossible(Field(key, kind_, low=0.0), row.get(key), {}, set())
        if why is not None:
            raise StoreError(f"{where}.{key}: {why}")
    if stored:
        check_id(f"{where}.id", row.get("id"))
        check_time(f"{where}.created_at", row.get("created_at"), required=True)


def plausible_calibration(row: dict) -> bool:
    """Whether a stored ceiling (perhaps from before the gate) may be used."""
    try:
        check_calibration("calibration", row, stored=False)
    except StoreError:
        return False
    return True


def check_records(records: dict, loads) -> None:
    """Refuse the first figure of ``records`` (already structurally valid) that cannot be true;
    ``loads`` decodes a JSON column. Duplicated windows of a run are refused too."""
    for i, run in enumerate(records.get("runs", [])):
        config, summary = loads(run.get("config")), loads(run.get("summary"))
        check_run(f"runs[{i}]", run, config, summary)
    seen: dict[tuple, int] = {}
    for i, row in enumerate(records.get("results", [])):
        check_result(f"results[{i}]", row)
        key = (row.get("run_id"), row.get("window"), row.get("scope"), row.get("rank"))
        if row.get("window") is not None and key in seen:
            raise StoreError(f"results[{i}].window: window {row['window']} of run "
                             f"{row['run_id']!r} is already results[{seen[key]}]; a window "
                             "is recorded once")
        seen[key] = i
    for i, row in enumerate(records.get("power_samples", [])):
        why = why_impossible(Field("power_w", float, unit="W", low=0.0, limit="power"),
                             row.get("power_w"), {}, set())
        if why is not None:
            raise StoreError(f"power_samples[{i}].power_w: {why}")
    for i, row in enumerate(records.get("environments", [])):
        check_id(f"environments[{i}].id", row.get("id"))
    for i, row in enumerate(records.get("devices", [])):
        for key in ("first_seen", "last_seen"):
            check_time(f"devices[{i}].{key}", row.get(key))
    for i, row in enumerate(records.get("calibrations", [])):
        check_calibration(f"calibrations[{i}]", row)
