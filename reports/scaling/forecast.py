"""A forecast: the logical compute a target needs, and its burden at a measured eta."""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiler.errors import ConfigError
from profiler.progress import ProgressFn, no_progress
from reports.scaling import burden
from reports.scaling.laws import (ChinchillaLaw, ComputeLaw, as_compute_law, get_law,
                                  parse_law_constants)

#: Doublings per year of the Moore-like reference line (a doubling every two years).
MOORE_R = 0.5


@dataclass
class EtaSource:
    """Where the eta came from, and what else the run measured."""

    eta_flops_per_j: float
    source: str
    estimated: bool = False
    run_id: str | None = None
    avg_power_w: float | None = None
    mfu: float | None = None
    peak_flops_per_s: float | None = None
    #: The run's scenario, device type ("cuda", "cpu") and compute precision (None for --eta).
    scenario: str | None = None
    device_type: str | None = None
    precision: str | None = None
    #: Why an eta of another kind than a training run's stands in for one.
    note: str | None = None


def choose_law(name: str = "chinchilla", constants: str | None = None, fit_file: str | None = None,
               bootstrap: int = 50, progress: ProgressFn = no_progress
               ) -> tuple[ComputeLaw | ChinchillaLaw, dict | None]:
    """The law of a forecast and, when fitted, the fit's document: fitted to the points in
    ``fit_file`` (reports.scaling.fit), parsed from ``constants`` (``parse_law_constants``),
    or the named published law."""
    if sum(x is not None for x in (constants, fit_file)) > 1:
        raise ConfigError("give --law-constants or --fit, not both")
    if fit_file:
        from reports.scaling.fit import fit_chinchilla, fit_compute, read_points

        kind, points = read_points(fit_file)
        result = (fit_chinchilla if kind == "chinchilla" else fit_compute)(
            points, bootstrap=bootstrap, progress=progress)
        return result.law, result.to_dict()
    if constants:
        return parse_law_constants(constants), None
    return get_law(name), None


def given_eta(eta: float, *, run_id: str | None = None, device: str | None = None,
              variant: str | None = None) -> EtaSource:
    """An eta the user gave (``--eta``), refused with a run or device also named."""
    if run_id or device or variant:
        raise ConfigError("give the eta one way: --eta, or --run, or --device/--variant")
    if eta <= 0:
        raise ConfigError(f"--eta must be positive, got {eta}")
    return EtaSource(eta, "--eta given by the user")


def eta_from_store(store, *, run_id: str | None = None, device: str | None = None,
                   variant: str | None = None, allow_non_train: bool = False) -> EtaSource:
    """The eta of a stored run: the one named, or the best ok train run for a device/variant.

    The targets are training compute, so the eta must be a training run's (forward, backward
    and optimizer): a prefill or decode run's eta is refused unless ``allow_non_train``, and
    then the source's ``note`` says it stands in for training's."""
    note = None
    if run_id is not None:
        run = store.find_run(run_id)
        if run["status"] != "ok":
            raise ConfigError(f"run {run['id'][:8]} is {run['status']}, not ok: it has no eta")
        if run["scenario"] != "train":
            if not allow_non_train:
                raise ConfigError(
                    f"run {run['id'][:8]} is a {run['scenario']} run: a loss target is reached "
                    "by training, so its burden needs the eta of a train run (etameter bench "
                    "--scenario train); pass --allow-non-train to use this one anyway (the "
                    "output says so)")
            note = _stand_in(run)
    else:
        if device is None and variant is None:
            raise ConfigError("give the eta as --eta, --run ID, or --device/--variant")
        runs = [r for r in store.runs("ok", device=device, variant=variant)
                if (r.get("summary") or {}).get("eta_flops_per_j")]
        train = [r for r in runs if r["scenario"] == "train"]
        if not runs or not (train or allow_non_train):
            what = "ok run with an eta" if not runs else "ok train run with an eta (pass " \
                "--allow-non-train to take the best prefill or decode run)"
            raise ConfigError(f"no {what} for device {device!r}, variant {variant!r} "
                              f"in {store.path}")
        run = max(train or runs, key=lambda r: r["summary"]["eta_flops_per_j"])
        if not train:
            note = _stand_in(run) + " (no train run matches)"
    s = run.get("summary") or {}
    if not s.get("eta_flops_per_j"):
        raise ConfigError(f"run {run['id'][:8]} has no eta: {s.get('eta_reason') or 'no energy'}")
    return EtaSource(
        eta_flops_per_j=s["eta_flops_per_j"], run_id=run["id"],
        estimated=bool(s.get("energy_estimated")),
        source=(f"run {run['id'][:8]} ({run['variant']}, {run['scenario']} on {run['preset']}, "
                f"{run['device']}, energy {s.get('energy_method')})"),
        avg_power_w=s.get("avg_power_w"), mfu=s.get("mfu"),
        peak_flops_per_s=s.get("peak_flops_per_s"), scenario=run["scenario"],
        device_type=run.get("device_type"),
        precision=s.get("variant_precision") or s.get("precision"), note=note)


def _stand_in(run: dict) -> str:
    return (f"run {run['id'][:8]} is a {run['scenario']} run, not training: its eta (logical "
            f"FLOP/J of {run['scenario']} work) stands in for training's, as asked with "
            "--allow-non-train")


def doubling_rate(spec: str | None, precision: str | None = None, db_path: str | None = None,
                  allow_estimated: bool = False,
                  source: EtaSource | None = None) -> tuple[float | None, dict | None]:
    """``--doublings-per-year``: (a number, None), or (None, the rate of the hardware frontier
    of the stored runs in ``db_path``, or realised by the landmark training runs
    (reports.scaling.history), with its interval and source).

    The frontier is that of the eta's own device class and precision: GPU profiles only (no
    CPU profile has a release date, so a CPU eta gets no frontier rate, with the reason), at
    ``precision`` if given, else the precision the run computed in (bf16 for ``--eta``)."""
    if spec is None:
        return None, None
    try:
        return float(spec), None
    except ValueError:
        pass
    from hardware_profiles.profiles import load_profiles
    from reports.scaling import frontier

    if spec == "frontier":
        return None, _frontier_for(source, precision, frontier, load_profiles())
    if spec == "runs":
        from profiler.store import Store

        return None, frontier.runs_rate(Store(db_path, write=False).runs("ok"), load_profiles(), allow_estimated)
    if spec == "realised":
        from reports.scaling.history import realised_rate

        return None, realised_rate(load_profiles(), precision or "bf16")
    raise ConfigError(f"--doublings-per-year takes a number, 'realised', 'frontier' or 'runs', "
                      f"got {spec!r}")


def _frontier_for(source: EtaSource | None, precision: str | None, frontier, profiles) -> dict:
    """The frontier rate for the eta of ``source``: its device class, and its precision
    unless ``precision`` is given (then said, when it differs from the run's)."""
    if source is not None and source.device_type not in (None, "cuda"):
        raise ConfigError(
            f"the eta of {source.source} was measured on a {source.device_type}, and the "
            "hardware frontier is a fit over GPU profiles (no CPU profile has a release date): "
            "applying a GPU doubling rate to it would mix device classes; give the rate as a "
            "number (--doublings-per-year R) or take the eta from a GPU run")
    own = source.precision if source is not None else None
    chosen = precision or own or "bf16"
    rate = frontier.frontier_rate(profiles, chosen)
    why = ("given with --frontier-precision" if precision else
           "the run's compute precision" if own else "the default for an --eta")
    rate["source"] += f"; precision {chosen}: {why}"
    if precision and own and precision != own:
        rate["source"] += f" (the run computed in {own})"
    return rate


def forecast(law: ComputeLaw | ChinchillaLaw, eta: EtaSource, *, target_loss: float | None = None,
             compute_flop: float | None = None, n_params: float | None = None,
             n_tokens: float | None = None, power_w: float | None = None, devices: int = 1,
             mfu: float | None = None, peak_flops_per_s: float | None = None,
             budget_j_per_year: float | None = None, years: float | None = None,
             doublings_per_year: float | None = None, price_per_kwh: float | None = None,
             allow_estimated: bool = False, rate: dict | None = None,
             currency: str | None = None) -> dict:
    """Everything the calculator says about one target; missing inputs give null + reason.

    ``rate`` (from reports.scaling.frontier: ``r``, ``low``, ``high``, ``source``,
    ``estimated``) replaces ``doublings_per_year`` with a measured r and its interval, which
    gives the years figures a low/high range. Figures that rest on an estimated eta or rate
    are listed in ``estimated_figures``."""
    if eta.estimated and not allow_estimated:
        raise ConfigError(f"the eta from {eta.source} is estimated, not measured: a forecast "
                          "from it would look like a measurement. Pass --allow-estimated to use "
                          "it anyway (the output stays labelled estimated)")
    if devices <= 0:
        raise ConfigError(f"--devices must be positive, got {devices}")
    claw = as_compute_law(law)
    out: dict = {"law": law.to_dict(), "compute_law": claw.to_dict(),
                 "eta_flops_per_j": eta.eta_flops_per_j, "eta_source": eta.source,
                 "eta_estimated": eta.estimated, "eta_scenario": eta.scenario,
                 "eta_note": eta.note, "reasons": {}}
    given = [x is not None for x in (target_loss, compute_flop, n_params or n_tokens)]
    if sum(given) != 1:
        raise ConfigError("give one target: --target-loss, --compute, or --params with --tokens")
    if target_loss is not None:
        c = claw.compute_for_loss(target_loss)
        out["target_loss"] = target_loss
    elif compute_flop is not None:
        if compute_flop <= 0:
            raise ConfigError(f"--compute must be positive, got {compute_flop}")
        c = compute_flop
        out["target_loss"] = claw.loss(c)
    else:
        if n_params is None or n_tokens is None or n_params <= 0 or n_tokens <= 0:
            raise ConfigError("--params and --tokens go together, both positive")
        c = 6.0 * n_params * n_tokens
        out["target_loss"] = (law.loss(n_params, n_tokens) if isinstance(law, ChinchillaLaw)
                              else claw.loss(c))
        out.update(n_params=n_params, n_tokens=n_tokens)
    if not 1.0 <= c < math.inf:
        raise ConfigError(f"the target needs {c:.3g} FLOP of logical compute: a forecast needs "
                          "at least one FLOP and a finite figure; choose a lower target loss")
    out["logical_compute_flop"] = c
    if isinstance(law, ChinchillaLaw):
        n_opt, d_opt = law.optimal(c)
        out.update(compute_optimal_n_params=n_opt, compute_optimal_n_tokens=d_opt)
    energy = burden.energy_j(c, eta.eta_flops_per_j)
    out.update(energy_j=energy, energy_mwh=energy / burden.J_PER_MWH)
    _time(out, c, energy, eta, power_w, devices, mfu, peak_flops_per_s)
    out["currency"] = currency
    if price_per_kwh is not None:
        out["cost"] = energy / burden.J_PER_KWH * price_per_kwh
    else:
        out["cost"] = None
        out["reasons"]["cost"] = "no --price-per-kwh"
    if rate is not None and doublings_per_year is not None:
        raise ConfigError("give the doubling rate one way: a number, 'frontier' or 'runs'")
    rate = rate or {"r": doublings_per_year, "low": None, "high": None, "estimated": False,
                    "source": "--doublings-per-year given by the user" if doublings_per_year
                    is not None else None}
    _doublings(out, c, eta.eta_flops_per_j, budget_j_per_year, years, rate)
    est = [k for k in ENERGY_FIGURES if eta.estimated and out.get(k) is not None]
    est += [k for k in RATE_FIGURES if rate.get("estimated") and out.get(k) is not None]
    out["estimated_figures"] = sorted(set(est))
    return out


#: Figures that rest on the eta (and so are estimated when it is).
ENERGY_FIGURES = ("energy_j", "energy_mwh", "device_hours", "wall_clock_s", "wall_clock_days",
                  "cost", "doublings_needed", "years_at_r", "years_to_target_with_growth",
                  "compute_within_horizon_flop")
#: Figures that rest on the doubling rate.
RATE_FIGURES = ("years_at_r", "years_to_target_with_growth", "compute_within_horizon_flop")


def _time(out, c, energy, eta: EtaSource, power_w, devices, mfu, peak):
    power_source = "--power-w"
    if power_w is None and eta.avg_power_w:
        power_w, power_source = eta.avg_power_w, f"average power of {eta.source}"
    out.update(power_w=power_w, power_source=power_w and power_source, devices=devices)
    if power_w:
        out["device_hours"] = energy / power_w / 3600.0
        out["wall_clock_s"] = energy / (power_w * devices)
        out["wall_clock_days"] = out["wall_clock_s"] / 86400.0
    else:
        out.update(device_hours=None, wall_clock_s=None, wall_clock_days=None)
        why = "no power: give --power-w (W per device) or take eta from a run"
        out["reasons"].update(device_hours=why, wall_clock_s=why, wall_clock_days=why)
    mfu = mfu if mfu is not None else eta.mfu
    peak = peak if peak is not None else eta.peak_flops_per_s
    if mfu and peak:
        out["wall_clock_from_mfu_s"] = c / (devices * mfu * peak)
        out["wall_clock_from_mfu_days"] = out["wall_clock_from_mfu_s"] / 86400.0
    else:
        out["wall_clock_from_mfu_s"] = out["wall_clock_from_mfu_days"] = None
        why = "needs --mfu and --peak-tflops (or a run that has both)"
        out["reasons"].update(wall_clock_from_mfu_s=why, wall_clock_from_mfu_days=why)


def _doublings(out, c, eta, budget, years, rate: dict):
    """The doublings needed over the horizon, and the years they take at r (with a low/high
    range from r's interval: the high r gives the low years)."""
    r = rate["r"]
    out.update(budget_j_per_year=budget, years=years, doublings_per_year=r,
               doublings_per_year_low=rate.get("low"), doublings_per_year_high=rate.get("high"),
               doublings_per_year_source=rate.get("source"))
    if rate.get("fit"):
        out["doublings_per_year_fit"] = rate["fit"]
    keys = ("doublings_needed", "years_at_r", "years_to_target_with_growth")
    if budget is None or years is None:
        out.update(dict.fromkeys(keys))
        out["reasons"].update(dict.fromkeys(keys, "needs --budget-j-per-year and --years"))
        return
    if budget <= 0 or years <= 0:
        raise ConfigError("--budget-j-per-year and --years must be positive")
    needed = burden.doublings_needed(c, budget * years, eta)
    out["eta_required_flops_per_j"] = c / (budget * years)
    out["doublings_needed"] = needed
    if r is None or r <= 0:
        out.update(years_at_r=None, years_to_target_with_growth=None)
        why = ("needs --doublings-per-year > 0" if r is None else
               f"the doubling rate r = {r:.3g} is not positive: efficiency does not grow")
        out["reasons"].update(years_at_r=why, years_to_target_with_growth=why)
        return
    out["years_at_r"] = max(needed, 0.0) / r
    out["years_to_target_with_growth"] = burden.years_to_compute(c, budget, eta, r)
    out["compute_within_horizon_flop"] = burden.cumulative_compute(budget, eta, r, years)
    _ranges(out, c, budget, eta, max(needed, 0.0), rate)


def _ranges(out, c, budget, eta, needed, rate: dict):
    """``<key>_low/_high`` of the years figures from r's 95% interval (the high r gives the
    low years); an end that is never reached is None with the reason."""
    low_r, high_r = rate.get("low"), rate.get("high")
    for key in ("years_at_r", "years_to_target_with_growth"):
        if low_r is None or high_r is None:
            out[f"{key}_low"] = out[f"{key}_high"] = None
            out["reasons"][f"{key}_range"] = "r has no interval (a number given, or a fit of two points)"
            continue
        out[f"{key}_low"] = _years_at(key, high_r, c, budget, eta, needed)
        out[f"{key}_high"] = _years_at(key, low_r, c, budget, eta, needed)
        if out[f"{key}_high"] is None:
            out["reasons"][f"{key}_range"] = (
                f"r's 95% interval reaches {low_r:.3g}: at its low end efficiency does not grow "
                "enough to get there, so the years have no upper bound")


def _years_at(key, r, c, budget, eta, needed) -> float | None:
    """A years figure at rate r; None where it is never reached (r <= 0 with doublings still
    needed, or a shrinking efficiency whose cumulative compute stays below the target)."""
    if key == "years_at_r":
        return 0.0 if needed == 0 else (needed / r if r > 0 else None)
    if r < 0 and 1.0 + c * r * math.log(2) / (budget * eta) <= 0:
        return None
    return burden.years_to_compute(c, budget, eta, r)


def figure1_curves(alpha: float, years: float = 10.0, rates=(0.0, 0.25, MOORE_R, 1.0, 2.0),
                   points: int = 101) -> dict:
    """Relative excess loss over calendar years for several r (the paper's Figure 1).

    The reference is constant efficiency after one year: ``dL(t)/dL_ref =
    (C_r(t) / C_0(1 yr))^-alpha``. The budget and eta0 cancel out of the ratio.
    """
    ts = [years * i / (points - 1) for i in range(1, points)]
    curves = {}
    for r in rates:
        curves[r] = [burden.relative_excess_loss(
            burden.cumulative_compute(1.0, 1.0, r, t) / burden.cumulative_compute(1.0, 1.0, 0.0, 1.0),
            alpha) for t in ts]
    return {"years": ts, "curves": curves, "alpha": alpha, "moore_r": MOORE_R}


def loss_burden_curve(law, eta: float, losses: list[float]) -> list[tuple[float, float]]:
    """(target loss, energy in J) pairs for the burden-against-target plot."""
    claw = as_compute_law(law)
    return [(loss, burden.energy_j(claw.compute_for_loss(loss), eta)) for loss in losses
            if loss > claw.l_inf]


def loss_grid(law, start: float | None = None, stop: float | None = None, n: int = 60) -> list[float]:
    claw = as_compute_law(law)
    lo = claw.l_inf + 0.02 * max(claw.l_inf, 0.5)
    hi = claw.loss(1e18)
    start, stop = start or hi, stop or lo
    return [start + (stop - start) * i / (n - 1) for i in range(n)]
