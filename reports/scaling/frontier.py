"""The hardware efficiency frontier and measured doubling rates (theory.md section 5).

Each device profile with a release date, a TDP and a dense peak at a precision has an eta
ceiling ``F_peak / TDP`` (logical FLOP/J at full utilisation and full board power: an upper
bound on the eta a run on it can reach). Fitting ``log2(eta) = a + r (t - T0_YEAR)`` by
ordinary least squares over release dates t (decimal years) gives r, the hardware's
efficiency doublings per year, with a 95% interval from the t distribution (df = n - 2).
The same fit over the user's own stored runs (each device's best measured eta) gives the
rate of what they achieved, for ``forecast --doublings-per-year runs``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hardware_profiles.release import decimal_year
from profiler.errors import ConfigError
from profiler.stats import t975

#: The fit's intercept is log2(eta) at this year (a round year near the data, not year 0).
T0_YEAR = 2020.0
#: The precision of the frontier rate used by ``forecast --doublings-per-year frontier``.
DEFAULT_PRECISION = "bf16"


@dataclass(frozen=True)
class RateFit:
    """``log2(eta) = a + r (t - T0_YEAR)`` fitted over ``n`` points.

    ``r_low``/``r_high`` bound r's 95% interval (None, with ``interval_reason``, for fewer
    than three points). ``doubling_time_years`` is ``1 / r``."""

    n: int
    r_per_year: float
    a_log2: float
    r_low: float | None
    r_high: float | None
    se_r: float | None
    t0_year: float
    labels: tuple[str, ...]
    interval_reason: str | None = None

    @property
    def doubling_time_years(self) -> float | None:
        return 1.0 / self.r_per_year if self.r_per_year > 0 else None

    def to_dict(self) -> dict:
        return {**asdict(self), "labels": list(self.labels),
                "doubling_time_years": self.doubling_time_years}


def fit_rate(points: list[tuple[str, float, float]]) -> RateFit:
    """OLS of log2(eta) on decimal years over ``(label, t_years, eta)`` points.

    ``r = Sxy / Sxx`` with its standard error ``sqrt(SSE / (n - 2) / Sxx)``; the interval is
    ``r +- t975(n - 2) se``. Refused (ConfigError) with fewer than two points or one date."""
    if len(points) < 2:
        raise ConfigError(f"a doubling rate needs at least two points with a date, got {len(points)}")
    ts = [p[1] - T0_YEAR for p in points]
    ys = [math.log2(p[2]) for p in points]
    n = len(points)
    t_mean, y_mean = sum(ts) / n, sum(ys) / n
    sxx = sum((t - t_mean) ** 2 for t in ts)
    if sxx == 0:
        raise ConfigError("every point has the same date: a rate over time cannot be fitted")
    r = sum((t - t_mean) * (y - y_mean) for t, y in zip(ts, ys)) / sxx
    a = y_mean - r * t_mean
    labels = tuple(p[0] for p in points)
    if n < 3:
        return RateFit(n, r, a, None, None, None, T0_YEAR, labels,
                       "two points fit exactly: an interval needs at least three")
    sse = sum((y - (a + r * t)) ** 2 for t, y in zip(ts, ys))
    se = math.sqrt(sse / (n - 2) / sxx)
    half = t975(n - 2) * se
    return RateFit(n, r, a, r - half, r + half, se, T0_YEAR, labels)


def ceiling_table(profiles, precision: str, vendors: tuple[str, ...] = ()) -> list[dict]:
    """Every GPU profile (of ``vendors``, if given) with its eta ceiling at ``precision``, or
    the reason it has none (no peak at that precision, no TDP, no release date)."""
    rows = []
    for d in profiles.devices:
        if vendors and d.vendor not in vendors:
            continue
        peak = d.peak(precision)
        row = {"id": d.id, "device": d.display_name, "vendor": d.vendor,
               "release_date": d.release_date, "peak_flops_per_s": peak, "tdp_w": d.tdp_w,
               "eta_ceiling_flops_per_j": None, "reason": None,
               "release_date_source": d.sources.get("release_date")}
        missing = [what for what, value in (("release date", d.release_date), ("TDP", d.tdp_w),
                                            (f"{precision} peak", peak)) if not value]
        if missing:
            row["reason"] = "no " + ", no ".join(missing) + " in its profile"
        else:
            row["t_years"] = decimal_year(d.release_date)
            row["eta_ceiling_flops_per_j"] = peak / d.tdp_w
        rows.append(row)
    return sorted(rows, key=lambda r: (r["release_date"] or "9999", r["id"]))


def frontier(profiles, precision: str = DEFAULT_PRECISION, vendors: tuple[str, ...] = ()) -> dict:
    """The frontier document: the ceiling table and the fit of r over the devices that have
    a ceiling (``fit`` None with ``fit_reason`` when fewer than two do)."""
    table = ceiling_table(profiles, precision, vendors)
    points = [(r["id"], r["t_years"], r["eta_ceiling_flops_per_j"]) for r in table
              if r["eta_ceiling_flops_per_j"]]
    doc = {"precision": precision, "vendors": list(vendors) or "all", "devices": table,
           "what": f"dense {precision} peak per watt at TDP (eta ceiling, FLOP/J) over release date",
           "fit": None, "fit_reason": None}
    try:
        doc["fit"] = fit_rate(points).to_dict()
    except ConfigError as e:
        doc["fit_reason"] = str(e)
    return doc


def frontier_rate(profiles, precision: str = DEFAULT_PRECISION) -> dict:
    """r with its interval and the source line, for ``forecast --doublings-per-year frontier``."""
    doc = frontier(profiles, precision)
    fit = doc["fit"]
    if fit is None:
        raise ConfigError(f"no {precision} frontier: {doc['fit_reason']}")
    return {"r": fit["r_per_year"], "low": fit["r_low"], "high": fit["r_high"],
            "source": (f"hardware frontier: {precision} dense peak per watt at TDP over release "
                       f"date, {fit['n']} device profiles ({', '.join(fit['labels'])})"),
            "estimated": False, "fit": fit}


def run_points(runs: list[dict], profiles, allow_estimated: bool = False) -> tuple[list[dict], list[dict]]:
    """Each device's best measured eta among ok ``runs`` whose device profile has a release
    date: (points, skipped runs with the reason). Estimated energy is left out unless allowed."""
    dates = {d.id: d.release_date for d in profiles.devices}
    best: dict[str, dict] = {}
    skipped = []
    for run in runs:
        s = run.get("summary") or {}
        profile = ((run.get("config") or {}).get("device") or {}).get("profile")
        reason = None
        if run.get("status") != "ok" or not s.get("eta_flops_per_j"):
            reason = f"status {run.get('status')}, eta {s.get('eta_flops_per_j')}"
        elif s.get("energy_estimated") and not allow_estimated:
            reason = "estimated energy (pass --allow-estimated to use it)"
        elif not dates.get(profile):
            reason = f"device profile {profile!r} has no release date"
        if reason:
            skipped.append({"run_id": run["id"], "device": run.get("device"), "reason": reason})
            continue
        eta = s["eta_flops_per_j"]
        if profile not in best or eta > best[profile]["eta_flops_per_j"]:
            best[profile] = {"profile": profile, "device": run.get("device"), "run_id": run["id"],
                             "release_date": dates[profile], "eta_flops_per_j": eta,
                             "t_years": decimal_year(dates[profile]),
                             "estimated": bool(s.get("energy_estimated"))}
    return sorted(best.values(), key=lambda p: p["t_years"]), skipped


def runs_rate(runs: list[dict], profiles, allow_estimated: bool = False) -> dict:
    """r fitted over the user's stored runs (each device's best eta against its release date),
    for ``forecast --doublings-per-year runs``; refused with fewer than two dated devices."""
    points, skipped = run_points(runs, profiles, allow_estimated)
    if len(points) < 2:
        why = "; ".join(sorted({s["reason"] for s in skipped})) or "no ok runs"
        raise ConfigError(f"--doublings-per-year runs needs ok runs on at least two devices whose "
                          f"profiles have a release date; found {len(points)} ({why})")
    fit = fit_rate([(p["profile"], p["t_years"], p["eta_flops_per_j"]) for p in points])
    return {"r": fit.r_per_year, "low": fit.r_low, "high": fit.r_high,
            "source": (f"your stored runs: best measured eta of {fit.n} devices over their release "
                       f"dates ({', '.join(fit.labels)})"),
            "estimated": any(p["estimated"] for p in points), "fit": fit.to_dict(),
            "points": points}


def frontier_with_runs(profiles, runs: list[dict] | None, precision: str = DEFAULT_PRECISION,
                       vendors: tuple[str, ...] = ()) -> dict:
    """The frontier document plus, from stored ``runs``, each dated device's best measured eta
    (estimated ones kept and labelled) to place beside its ceiling."""
    doc = frontier(profiles, precision, vendors)
    if runs is None:
        doc["measured"], doc["measured_skipped"] = [], []
        doc["measured_reason"] = "no result database"
        return doc
    doc["measured"], doc["measured_skipped"] = run_points(runs, profiles, allow_estimated=True)
    return doc
