"""Landmark training runs as data: their sourced inputs and the realised eta derived from them.

``reports/scaling/data/landmarks.toml`` lists published training runs (GPT-3, BLOOM, Llama 3.1,
DeepSeek-V3, ...) with a source for every figure. Loading validates each entry the way the
device profiles are validated (hardware_profiles/validate.py): types, finite numbers within
plausible ranges, one way to give each quantity, a source per figure; errors name the file,
the run and the field.

From the inputs (``realised``): the logical compute C (given, ``6 N D``, or ``6 N_active D``
for a mixture of experts), the accelerator-hours H, and each energy basis:

- ``hours x TDP``: ``E = H * TDP``, the boards at their thermal design power all the time. A
  board rarely averages its TDP, so this over-states the board energy and ``C / E`` is a
  **lower bound** on the board-level eta. It is also the basis the hardware ceiling
  ``F_peak / TDP`` uses, so ``eta / ceiling = C / (H F_peak)``: the run's MFU averaged over
  every accelerator-hour it was given (restarts, evaluation and idle time included).
- the published energy at its scope (facility with PUE, IT, or measured accelerator energy);
  a facility figure with a stated PUE also gives its IT energy (facility / PUE). Only an
  ``accelerator`` (board) measurement bounds the board eta from above; facility and IT
  figures include hosts, network and cooling, and are shown beside it, not mixed into it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources

from hardware_profiles.profiles import PRECISIONS
from hardware_profiles.release import decimal_year
from profiler.errors import ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEMA_VERSION = 1
J_PER_KWH = 3.6e6
#: The scopes a published energy figure can have, and what each includes.
ENERGY_SCOPES = {
    "facility": "the datacenter's energy: servers plus cooling and power losses (PUE)",
    "it": "the servers' energy: accelerators, hosts, memory, network; no cooling",
    "accelerator": "the accelerator boards alone, measured",
}
#: field -> (low, high, unit): a figure must be > low and < high (wide; outside is a unit slip).
RANGES = {
    "compute_flop": (1e15, 1e30, "FLOP"), "params": (1e6, 1e14, "parameters"),
    "active_params": (1e6, 1e14, "parameters"), "tokens": (1e6, 1e16, "tokens"),
    "accelerator_hours": (1.0, 1e10, "accelerator-hours"), "accelerators": (0.0, 1e7, "accelerators"),
    "days": (0.0, 1e4, "days"), "energy_kwh": (0.0, 1e10, "kWh"), "pue": (1.0, 3.0, "(PUE)"),
    "tdp_w": (0.0, 1e5, "W"),
}
REQUIRED_TEXT = ("id", "name", "organisation", "accelerator", "precision", "scope")


@dataclass(frozen=True)
class LandmarkRun:
    """One published training run: its sourced inputs (``sources`` has one entry per figure)."""

    id: str
    name: str
    organisation: str
    date: str
    accelerator: str
    precision: str
    scope: str
    sources: dict[str, str]
    compute_flop: float | None = None
    params: float | None = None
    active_params: float | None = None
    tokens: float | None = None
    accelerator_hours: float | None = None
    accelerators: float | None = None
    days: float | None = None
    device_profile: str | None = None
    tdp_w: float | None = None
    energy_kwh: tuple[float, ...] = ()
    energy_scope: str | None = None
    energy_basis: str | None = None
    pue: float | None = None
    unverified: tuple[str, ...] = field(default_factory=tuple)
    origin: str = ""

    @property
    def t_years(self) -> float:
        return decimal_year(self.date)

    @property
    def compute_basis(self) -> str:
        if self.compute_flop is not None:
            return "given"
        return "6 N_active D (MoE)" if self.active_params is not None else "6 N D"

    @property
    def logical_compute_flop(self) -> float:
        """C: as published, or 6 N D over the dense (or active) parameters."""
        if self.compute_flop is not None:
            return self.compute_flop
        return 6.0 * (self.active_params or self.params) * self.tokens

    @property
    def hours(self) -> float:
        """Accelerator-hours: given, or accelerators x days x 24."""
        if self.accelerator_hours is not None:
            return self.accelerator_hours
        return self.accelerators * self.days * 24.0


def _number(entry: dict, key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    low, high, unit = RANGES[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ProfileError(f"{where}: field '{key}' must be a finite number in {unit}, got {value!r}")
    if not low < value < high:
        raise ProfileError(f"{where}: field '{key}' = {value:g} is not plausible in {unit}: it must "
                           f"be > {low:g} and < {high:g} (is it in the wrong unit?)")
    return float(value)


def _text(entry: dict, key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: field '{key}' must be non-empty text, got {value!r}")
    return value


def _one_way(entry: dict, where: str, what: str, ways: tuple[tuple[str, ...], ...]) -> None:
    """Exactly one of ``ways`` (each a tuple of fields) fully given, and no field of another."""
    used = {k for k in entry if any(k in w for w in ways)}
    if sum(set(w) == used for w in ways) != 1:
        forms = " or ".join(" with ".join(w) for w in ways)
        raise ProfileError(f"{where}: give the {what} one way: {forms}")


def parse_run(entry: dict, where: str) -> LandmarkRun:
    """A validated ``[[run]]`` entry; every figure present needs its ``sources`` entry."""
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: a [[run]] must be a table")
    ident = _text(entry, "id", where)
    where = f"{where} (run {ident})"
    known = set(REQUIRED_TEXT) | set(RANGES) | {"date", "sources", "device_profile", "energy_scope",
                                                 "energy_basis", "unverified"}
    extra = sorted(set(entry) - known)
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {', '.join(extra)} (known: the fields of "
                           "reports/scaling/data/landmarks.toml's header)")
    texts = {k: _text(entry, k, where) for k in REQUIRED_TEXT}
    if texts["precision"] not in PRECISIONS:
        raise ProfileError(f"{where}: field 'precision' must be one of {', '.join(PRECISIONS)}, "
                           f"got {texts['precision']!r}")
    raw_date = entry.get("date")
    try:
        iso = date.fromisoformat(raw_date.isoformat() if isinstance(raw_date, date) else raw_date)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: field 'date' must be an ISO date like \"2024-07-23\", "
                           f"got {raw_date!r}") from None
    _one_way(entry, where, "logical compute", (("compute_flop",), ("params", "tokens"),
                                               ("active_params", "tokens")))
    _one_way(entry, where, "accelerator-hours", (("accelerator_hours",), ("accelerators", "days")))
    numbers = {k: _number(entry, k, where) for k in RANGES if k != "energy_kwh"}
    parts = entry.get("energy_kwh", [])
    if not isinstance(parts, list) or not parts and "energy_kwh" in entry:
        raise ProfileError(f"{where}: field 'energy_kwh' must be a list of kWh figures (parts summed)")
    energy = tuple(_number({"energy_kwh": p}, "energy_kwh", where) for p in parts)
    scope = _text(entry, "energy_scope", where, required=bool(energy))
    basis = _text(entry, "energy_basis", where, required=bool(energy))
    if energy and scope not in ENERGY_SCOPES:
        raise ProfileError(f"{where}: field 'energy_scope' must be one of "
                           f"{', '.join(ENERGY_SCOPES)}, got {scope!r}")
    if not energy and (scope or basis or numbers["pue"]):
        raise ProfileError(f"{where}: energy_scope, energy_basis and pue describe energy_kwh, "
                           "which is missing")
    sources = entry.get("sources")
    if not isinstance(sources, dict) or not all(isinstance(v, str) and v.strip()
                                                for v in sources.values()):
        raise ProfileError(f"{where}: field 'sources' must be a table of text (a citation per figure)")
    figures = ["date", "accelerator", "precision"] + [k for k in RANGES if entry.get(k) is not None]
    for key in figures:
        if not sources.get(key):
            raise ProfileError(f"{where}: sources.{key} is missing: every figure needs a source")
    profile = _text(entry, "device_profile", where, required=False)
    if profile is None and numbers["tdp_w"] is None and "tdp_w" in entry:
        raise ProfileError(f"{where}: field 'tdp_w' must be a number")
    unverified = entry.get("unverified", [])
    if not isinstance(unverified, list) or not all(isinstance(u, str) and u in figures for u in unverified):
        raise ProfileError(f"{where}: field 'unverified' must list figures of this run "
                           f"({', '.join(figures)}), got {unverified!r}")
    return LandmarkRun(**texts, date=iso.isoformat(), sources=dict(sources),
                       **{k: v for k, v in numbers.items()}, device_profile=profile,
                       energy_kwh=energy, energy_scope=scope, energy_basis=basis,
                       unverified=tuple(unverified), origin=where)


def parse_landmarks(text: str, origin: str) -> tuple[LandmarkRun, ...]:
    """Every ``[[run]]`` of a landmarks file, validated; ids must be unique."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{origin}: not valid TOML ({e})") from e
    if doc.get("schema") != SCHEMA_VERSION:
        raise ProfileError(f"{origin}: schema must be {SCHEMA_VERSION}, got {doc.get('schema')!r}")
    runs = tuple(parse_run(e, f"{origin} [[run]] #{i + 1}") for i, e in enumerate(doc.get("run", [])))
    ids = [r.id for r in runs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ProfileError(f"{origin}: run ids must be unique, repeated: {', '.join(dup)}")
    return runs


@lru_cache(maxsize=1)
def builtin_landmarks() -> tuple[LandmarkRun, ...]:
    """The shipped dataset (``reports/scaling/data/landmarks.toml``)."""
    path = resources.files("reports.scaling") / "data" / "landmarks.toml"
    return parse_landmarks(path.read_text(encoding="utf-8"), "landmarks.toml")


def find_landmark(ident: str, runs: tuple[LandmarkRun, ...] | None = None) -> LandmarkRun | None:
    """The landmark with this id (case-insensitive), or None."""
    for run in runs if runs is not None else builtin_landmarks():
        if run.id.lower() == ident.lower():
            return run
    return None


def realised(run: LandmarkRun, profiles) -> dict:
    """The run's derived figures: C, hours, the accelerator's TDP, peak and ceiling at the
    run's precision (from its device profile), every energy basis with its eta, and the
    board-level band (low: hours x TDP; high: a measured board energy, else None with why)."""
    c, hours = run.logical_compute_flop, run.hours
    device = next((d for d in profiles.devices if d.id == run.device_profile), None)
    out = {"id": run.id, "name": run.name, "organisation": run.organisation, "date": run.date,
           "t_years": run.t_years, "accelerator": run.accelerator, "precision": run.precision,
           "device_profile": run.device_profile, "logical_compute_flop": c,
           "compute_basis": run.compute_basis, "accelerator_hours": hours, "scope": run.scope,
           "unverified": list(run.unverified), "sources": dict(run.sources), "bases": [],
           "reason": None}
    if run.device_profile and device is None:
        out["reason"] = f"device profile {run.device_profile!r} is not among the loaded profiles"
        return out
    tdp = device.tdp_w if device else run.tdp_w
    peak = device.peak(run.precision) if device else None
    out.update(tdp_w=tdp, peak_flops_per_s=peak,
               tdp_source="device profile " + device.id if device and tdp else
               ("sources.tdp_w" if tdp else None))
    out["eta_ceiling_flops_per_j"] = peak / tdp if peak and tdp else None
    if not out["eta_ceiling_flops_per_j"]:
        out["ceiling_reason"] = (f"no device profile for the {run.accelerator}" if not device else
                                 f"profile {device.id} has no {run.precision} peak or TDP")
    if tdp:
        out["bases"].append(_basis("hours x TDP", "accelerator", hours * tdp * 3600.0, c,
                                   f"{hours:.4g} h x {tdp:g} W: over-states the board energy, so "
                                   "eta is a lower bound", bound="lower"))
    if run.energy_kwh:
        e = sum(run.energy_kwh) * J_PER_KWH
        out["bases"].append(_basis(f"published ({run.energy_scope})", run.energy_scope, e, c,
                                   run.energy_basis, bound="upper" if run.energy_scope == "accelerator"
                                   else None))
        if run.energy_scope == "facility" and run.pue:
            out["bases"].append(_basis("published / PUE (it)", "it", e / run.pue, c,
                                       f"the facility figure over the stated PUE {run.pue:g}"))
    low = next((b for b in out["bases"] if b["bound"] == "lower"), None)
    high = next((b for b in out["bases"] if b["bound"] == "upper"), None)
    out["eta_flops_per_j"] = low["eta_flops_per_j"] if low else None
    out["band"] = {"low": low and low["eta_flops_per_j"], "high": high and high["eta_flops_per_j"],
                   "low_rests_on": low and f"hours x TDP ({low['note']})",
                   "high_rests_on": high and f"measured board energy ({high['note']})",
                   "high_reason": None if high else
                   "no measured board energy or stated average board power: no upper bound"}
    if low is None:
        out["reason"] = (f"no TDP for the {run.accelerator}: no device profile and no sourced "
                         "tdp_w, so no board-level eta")
    ceiling = out["eta_ceiling_flops_per_j"]
    out["share_of_ceiling"] = out["eta_flops_per_j"] / ceiling if ceiling and low else None
    out["share_high"] = out["band"]["high"] / ceiling if ceiling and high else None
    return out


def _basis(name: str, scope: str, energy_j: float, c: float, note: str | None, bound=None) -> dict:
    return {"basis": name, "scope": scope, "energy_j": energy_j, "energy_mwh": energy_j / 3.6e9,
            "eta_flops_per_j": c / energy_j, "bound": bound, "note": note}
