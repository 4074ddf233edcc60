"""How fast realised eta doubled: landmark training runs beside the hardware ceiling.

The hardware frontier (reports/scaling/frontier.py) fits the doubling rate of the ceiling
``F_peak / TDP``. What scaling rode on is the **realised** eta of real training runs: logical
compute over the energy spent (reports/scaling/landmarks.py derives it from each run's
sourced inputs). This module puts the two side by side:

- each landmark's realised eta on the ``hours x TDP`` basis (a lower bound on its board-level
  eta, and the basis the ceiling itself uses), its accelerator's ceiling at the run's
  precision, and the realised share of it (``eta / ceiling = C / (H F_peak)``: MFU over every
  accelerator-hour);
- the fit ``log2(eta) = a + r (t - 2020)`` over the landmarks' dates (frontier.fit_rate), r
  with its 95% interval, beside the hardware rate of the device profiles. Over the same runs
  OLS is linear, so ``r_realised = r_ceiling + r_share`` exactly: the rate splits into the
  ceilings of the devices the runs chose and the rise of their share;
- the ledger between two points (landmarks or stored runs): ``log2(eta_B/eta_A)`` =
  ``log2(ceiling_B/ceiling_A)`` (hardware) + ``log2(share_B/share_A)`` (realised share).
"""

from __future__ import annotations

import math

from hardware_profiles.release import decimal_year
from profiler.errors import ConfigError
from reports.scaling.frontier import DEFAULT_PRECISION, fit_rate, frontier
from reports.scaling.landmarks import builtin_landmarks, find_landmark, realised

#: What the realised rate is fitted over, in words (every output that uses it says so).
BASIS = ("landmark training runs' realised eta on the hours x TDP basis (each a lower bound on "
         "its board-level eta) over their publication dates")


def _fit(points: list[tuple[str, float, float]]) -> tuple[dict | None, str | None]:
    try:
        return fit_rate(points).to_dict(), None
    except ConfigError as e:
        return None, str(e)


def stored_points(runs: list[dict] | None, profiles) -> tuple[list[dict], list[dict]]:
    """The user's ok runs with an eta, each as a point (its date, eta, ceiling and share at its
    device profile and reference precision), and the runs left out with the reason."""
    devices = {d.id: d for d in profiles.devices}
    points, skipped = [], []
    for run in runs or []:
        s = run.get("summary") or {}
        profile = ((run.get("config") or {}).get("device") or {}).get("profile")
        eta = s.get("eta_flops_per_j")
        if run.get("status") != "ok" or not eta or not run.get("started_at"):
            skipped.append({"run_id": run["id"], "reason": f"status {run.get('status')}, eta {eta}"})
            continue
        d, precision = devices.get(profile), s.get("precision")
        peak = d.peak(precision) if d and precision else None
        ceiling = peak / d.tdp_w if peak and d.tdp_w else None
        points.append({
            "id": run["id"], "label": f"run {run['id'][:8]} ({run.get('variant')}, {run.get('device')})",
            "kind": "stored run", "date": run["started_at"][:10],
            "t_years": decimal_year(run["started_at"][:10]), "device": run.get("device"),
            "device_profile": profile, "precision": precision, "eta_flops_per_j": eta,
            "eta_low": eta, "eta_high": eta, "eta_ceiling_flops_per_j": ceiling,
            "share_of_ceiling": eta / ceiling if ceiling else None,
            "estimated": bool(s.get("energy_estimated")),
            "basis": f"measured ({s.get('energy_method')}, {s.get('energy_scope') or 'device'})",
            "ceiling_reason": None if ceiling else
            (f"no {precision} peak or TDP in profile {profile!r}" if d else "no device profile")})
    return points, skipped


def landmark_point(row: dict) -> dict:
    """A landmark's row (landmarks.realised) as a ledger point."""
    band = row.get("band") or {}
    return {"id": row["id"], "label": row["name"], "kind": "landmark", "date": row["date"],
            "t_years": row["t_years"], "device": row["accelerator"],
            "device_profile": row["device_profile"], "precision": row["precision"],
            "eta_flops_per_j": row.get("eta_flops_per_j"), "eta_low": band.get("low"),
            "eta_high": band.get("high"), "eta_ceiling_flops_per_j": row.get("eta_ceiling_flops_per_j"),
            "share_of_ceiling": row.get("share_of_ceiling"), "estimated": False,
            "basis": "hours x TDP (lower bound)", "unverified": row.get("unverified", []),
            "ceiling_reason": row.get("ceiling_reason") or row.get("reason")}


def history(profiles, stored_runs: list[dict] | None = None, precision: str = DEFAULT_PRECISION,
            landmarks=None) -> dict:
    """The history document: every landmark with its realised eta, band, ceiling and share;
    the realised rate and its split; the hardware rate at ``precision``; the stored runs."""
    runs = builtin_landmarks() if landmarks is None else landmarks
    rows = [realised(r, profiles) for r in runs]
    with_eta = [r for r in rows if r.get("eta_flops_per_j")]
    split = [r for r in with_eta if r.get("eta_ceiling_flops_per_j")]
    fit, fit_reason = _fit([(r["id"], r["t_years"], r["eta_flops_per_j"]) for r in with_eta])
    ceiling_fit, _ = _fit([(r["id"], r["t_years"], r["eta_ceiling_flops_per_j"]) for r in split])
    share_fit, _ = _fit([(r["id"], r["t_years"], r["share_of_ceiling"]) for r in split])
    hardware = frontier(profiles, precision)
    doc = {"what": "realised eta of landmark training runs beside the hardware ceiling",
           "basis": BASIS, "landmarks": rows, "realised_fit": fit, "realised_fit_reason": fit_reason,
           "split": None, "hardware_precision": precision, "hardware_fit": hardware["fit"],
           "hardware_fit_reason": hardware["fit_reason"], "devices": hardware["devices"],
           "left_out": [{"id": r["id"], "reason": r["reason"]} for r in rows if not r.get("eta_flops_per_j")]}
    if ceiling_fit and share_fit and len(split) == len(with_eta):
        doc["split"] = {"ceiling_r_per_year": ceiling_fit["r_per_year"],
                        "share_r_per_year": share_fit["r_per_year"],
                        "ceiling_fit": ceiling_fit, "share_fit": share_fit,
                        "what": ("r_realised = r of the runs' own device ceilings (at each run's "
                                 "precision) + r of their realised share of it, exactly (OLS is "
                                 "linear in log2 eta)")}
    if fit and hardware["fit"]:
        doc["rate_gap_per_year"] = fit["r_per_year"] - hardware["fit"]["r_per_year"]
    doc["stored"], doc["stored_skipped"] = stored_points(stored_runs, profiles)
    if stored_runs is None:
        doc["stored_reason"] = "no result database"
    return doc


def realised_rate(profiles, precision: str = DEFAULT_PRECISION) -> dict:
    """r fitted over the landmarks, with its interval and a source line that says why it
    differs from the hardware rate, for ``forecast --doublings-per-year realised``."""
    doc = history(profiles, None, precision)
    fit = doc["realised_fit"]
    if fit is None:
        raise ConfigError(f"no realised rate: {doc['realised_fit_reason']}")
    hw, split = doc["hardware_fit"], doc["split"]
    why = ""
    if hw:
        why = f"; it differs from the hardware frontier's {precision} rate ({hw['r_per_year']:.3f}/yr)"
        if split:
            why += (f" because it is the sum of the rate of the ceilings of the boards the runs "
                    f"chose ({split['ceiling_r_per_year']:.3f}/yr: each ran on the newest "
                    f"flagship, at its own precision) and the rate of their realised share of "
                    f"that ceiling ({split['share_r_per_year']:+.3f}/yr: utilisation, idle time, "
                    "power below TDP)")
    return {"r": fit["r_per_year"], "low": fit["r_low"], "high": fit["r_high"],
            "source": (f"realised: {BASIS}, {fit['n']} runs ({', '.join(fit['labels'])}){why}"),
            "estimated": False, "fit": fit, "kind": "realised",
            "hardware_r_per_year": hw and hw["r_per_year"]}


def resolve_point(ident: str, profiles, store=None) -> dict:
    """A landmark id, or else a stored run id or prefix (needs ``store``), as a ledger point."""
    run = find_landmark(ident)
    if run is not None:
        return landmark_point(realised(run, profiles))
    if store is None:
        ids = ", ".join(r.id for r in builtin_landmarks())
        raise ConfigError(f"{ident!r} is no landmark ({ids}) and there is no result database to "
                          "find a run in (--db)")
    points, skipped = stored_points([store.find_run(ident)], profiles)
    if not points:
        raise ConfigError(f"run {ident} has no realised eta: {skipped[0]['reason']}")
    return points[0]


def landmark_ledger(a: dict, b: dict) -> dict:
    """The gain from point ``a`` to point ``b`` in doublings, split into the hardware ceiling
    and the realised share of it; the terms sum to the total (``sum_residual`` ~1e-16)."""
    for p in (a, b):
        if not p.get("eta_flops_per_j"):
            raise ConfigError(f"{p['label']} has no realised eta: {p.get('ceiling_reason')}")
        if not p.get("eta_ceiling_flops_per_j"):
            raise ConfigError(f"{p['label']} has no hardware ceiling ({p.get('ceiling_reason')}): "
                              "its gain cannot be split into hardware and realised share")
    total = math.log2(b["eta_flops_per_j"] / a["eta_flops_per_j"])
    hardware = math.log2(b["eta_ceiling_flops_per_j"] / a["eta_ceiling_flops_per_j"])
    share = math.log2(b["share_of_ceiling"] / a["share_of_ceiling"])
    low = (math.log2(b["eta_low"] / a["eta_high"]) if a.get("eta_high") and b.get("eta_low") else None)
    high = (math.log2(b["eta_high"] / a["eta_low"]) if b.get("eta_high") and a.get("eta_low") else None)
    both_tdp = a["kind"] == b["kind"] == "landmark"
    band_note = ("both etas are hours x TDP lower bounds: the total is exact if both runs' boards "
                 "averaged the same fraction f of their TDP, and off by log2(f_A/f_B) otherwise; "
                 "no measured board energy bounds it" if both_tdp and low is None and high is None
                 else "the band combines each point's low and high eta")
    notes = []
    if a["precision"] != b["precision"]:
        notes.append(f"precisions differ ({a['precision']} vs {b['precision']}): each ceiling is at "
                     "its run's precision, so the change of precision is in the hardware term")
    if a["kind"] != b["kind"]:
        notes.append("a landmark (hours x TDP, a lower bound) against a stored run (measured "
                     "energy): the bases differ, and the total over-states the stored run's lead "
                     "by log2 of the landmark boards' average fraction of TDP")
    estimated = a["estimated"] or b["estimated"]
    terms = [{"key": "hardware", "label": "hardware ceiling (peak per watt at TDP)", "doublings": hardware,
              "band_low": hardware, "band_high": hardware, "note": "vendor peaks and TDPs: no spread"},
             {"key": "share", "label": "realised share of the ceiling", "doublings": share,
              "band_low": low and low - hardware, "band_high": high and high - hardware,
              "note": "utilisation, idle and failed time, power below TDP"}]
    return {"from": a, "to": b, "terms": terms, "total_doublings": total, "eta_ratio": 2 ** total,
            "total_band": [low, high], "band_note": band_note, "estimated": estimated,
            "sum_residual": total - (hardware + share), "notes": notes}
