"""Fit a scaling law to measured points the way Chinchilla did.

- Huber loss (delta 1e-3) on log-loss residuals, summed over points, not averaged;
- the log-sum-exp parametrization: ``log L = LSE(a - alpha log N, b - beta log D, e)`` with
  ``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)`` (and ``LSE(a - alpha log C, e)`` for the
  compute law);
- L-BFGS from a grid of starting points. All starts first take a vectorised Adam pass
  together, then the best few are refined with L-BFGS (strong Wolfe line search);
- bootstrap confidence intervals: refits on points resampled with replacement;
- the fit's residuals (RMS and largest absolute log-loss residual) beside every fitted law.

Data that cannot identify the law's parameters is refused with the reason: too few points or
distinct points, values that are not finite and positive, losses that do not fall with compute.

Runs in float64 with torch (already a dependency), on the CPU.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from profiler.errors import ConfigError
from profiler.progress import ProgressFn, no_progress
from reports.scaling.laws import ChinchillaLaw, ComputeLaw

HUBER_DELTA = 1e-3
ADAM_STEPS = 600
REFINE_TOP = 5

#: Starting grids (Hoffmann et al. 2022, Appendix D.2 for the Chinchilla form).
CHINCHILLA_GRID = dict(alpha=(0.0, 0.5, 1.0, 1.5, 2.0), beta=(0.0, 0.5, 1.0, 1.5, 2.0),
                       e=(-1.0, -0.5, 0.0, 0.5, 1.0), a=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
                       b=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0))
COMPUTE_GRID = dict(alpha=(0.02, 0.05, 0.1, 0.2, 0.4), e=(-1.0, -0.5, 0.0, 0.5, 1.0),
                    a=tuple(float(x) for x in range(0, 31, 3)))


def huber(residual: torch.Tensor, delta: float = HUBER_DELTA) -> torch.Tensor:
    absr = residual.abs()
    return torch.where(absr <= delta, 0.5 * residual ** 2, delta * (absr - 0.5 * delta))


def _chinchilla_pred(theta: torch.Tensor, log_n: torch.Tensor, log_d: torch.Tensor) -> torch.Tensor:
    """theta (..., 5) = (a, b, e, alpha, beta) -> predicted log L (..., points)."""
    a, b, e, alpha, beta = (theta[..., i:i + 1] for i in range(5))
    first, second = a - alpha * log_n, b - beta * log_d
    return torch.logsumexp(torch.stack([first, second, e.expand_as(first)], -1), dim=-1)


def _compute_pred(theta: torch.Tensor, log_c: torch.Tensor) -> torch.Tensor:
    """theta (..., 3) = (a, e, alpha) -> predicted log L (..., points)."""
    a, e, alpha = (theta[..., i:i + 1] for i in range(3))
    first = a - alpha * log_c
    return torch.logsumexp(torch.stack([first, e.expand_as(first)], -1), dim=-1)


def _objective(pred_fn, theta, inputs, log_l) -> torch.Tensor:
    return huber(pred_fn(theta, *inputs) - log_l).sum(-1)


def _minimise(pred_fn, inputs, log_l, starts: torch.Tensor,
              progress: ProgressFn = no_progress) -> tuple[torch.Tensor, float]:
    theta = starts.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, ADAM_STEPS)
    for i in range(ADAM_STEPS):
        opt.zero_grad()
        _objective(pred_fn, theta, inputs, log_l).sum().backward()
        opt.step()
        sched.step()
        progress(f"fit: {starts.shape[0]} starting points", i + 1, ADAM_STEPS)
    with torch.no_grad():
        losses = _objective(pred_fn, theta, inputs, log_l)
        losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
    best_theta, best_loss = None, float("inf")
    top = torch.argsort(losses)[:REFINE_TOP]
    for k, idx in enumerate(top):
        t = theta[idx].detach().clone().requires_grad_(True)
        lbfgs = torch.optim.LBFGS([t], lr=1.0, max_iter=500, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad()
            loss = _objective(pred_fn, t, inputs, log_l)
            loss.backward()
            return loss
        lbfgs.step(closure)
        loss = float(_objective(pred_fn, t.detach(), inputs, log_l))
        if loss < best_loss:
            best_theta, best_loss = t.detach(), loss
        progress("fit: L-BFGS refinement", k + 1, len(top))
    return best_theta, best_loss


@dataclass
class FitResult:
    law: ComputeLaw | ChinchillaLaw
    objective: float
    points: int
    intervals: dict  # parameter -> (low, high), 95% bootstrap
    residual_rms: float = 0.0  # root mean square of log L - predicted log L
    residual_max: float = 0.0  # the largest absolute log-loss residual
    bootstrap: int = 0

    def to_dict(self) -> dict:
        doc = {"law": self.law.to_dict(), "objective": self.objective, "points": self.points,
               "residuals": {"rms_log_loss": self.residual_rms,
                             "max_abs_log_loss": self.residual_max},
               "bootstrap": self.bootstrap,
               "confidence_95": {k: list(v) for k, v in self.intervals.items()}}
        if not self.intervals:
            doc["confidence_95_reason"] = ("no bootstrap resamples (--bootstrap 0)" if
                                           self.bootstrap <= 0 else
                                           "the bootstrap refits did not converge")
        return doc


def fit_lines(doc: dict) -> list[str]:
    """A fit's document (``FitResult.to_dict``) as lines: its points, residuals and the 95%
    interval of every parameter, or why there is none."""
    res = doc["residuals"]
    lines = [f"fit: {doc['points']} points; residuals of log loss: RMS {res['rms_log_loss']:.3g}, "
             f"largest {res['max_abs_log_loss']:.3g}"]
    law = doc["law"]
    if doc["confidence_95"]:
        lines += [f"  {name} = {law[name]:.4g}, 95% interval [{lo:.4g}, {hi:.4g}] "
                  f"({doc['bootstrap']} bootstrap refits)"
                  for name, (lo, hi) in doc["confidence_95"].items()]
    else:
        lines.append(f"  no intervals: {doc.get('confidence_95_reason')}")
    return lines


def _grid(grid: dict, order: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor(list(itertools.product(*(grid[k] for k in order))), dtype=torch.float64)


def _chinchilla_from(theta) -> ChinchillaLaw:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return ChinchillaLaw(e_irr=float(torch.exp(torch.tensor(e))), a_coef=float(torch.exp(torch.tensor(a))),
                         b_coef=float(torch.exp(torch.tensor(b))), a=alpha, b=beta, name="fitted",
                         source="fitted: Huber (delta 1e-3) on log loss, L-BFGS from a grid")


def _compute_from(theta) -> ComputeLaw:
    a, e, alpha = (float(x) for x in theta)
    return ComputeLaw(l_inf=float(torch.exp(torch.tensor(e))), a=float(torch.exp(torch.tensor(a))),
                      alpha=alpha, name="fitted",
                      source="fitted: Huber (delta 1e-3) on log loss, L-BFGS from a grid")


def _check(points: list[tuple], width: int) -> torch.Tensor:
    if len(points) < width + 1:
        raise ConfigError(f"need at least {width + 1} points to fit {width} parameters, got {len(points)}")
    for i, point in enumerate(points):
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in point):
            raise ConfigError(f"fit point {i + 1} {point}: every value must be a finite number")
        if min(point) <= 0:
            raise ConfigError(f"fit point {i + 1} {point}: every compute, N, D and loss value "
                              "must be positive")
    return torch.tensor(points, dtype=torch.float64)


def _check_identifiable(log_x: torch.Tensor, log_l: torch.Tensor, what: str) -> None:
    """Refuse losses that do not fall as ``what`` grows: no power law with a positive
    exponent fits them, and a fit would still return a confident-looking law."""
    dx = log_x - log_x.mean()
    slope = float((dx * (log_l - log_l.mean())).sum() / (dx * dx).sum())
    if not slope < 0:
        raise ConfigError(f"the losses do not decrease with {what} (slope of log L against log "
                          f"{what}: {slope:+.3g}): a scaling law cannot be fitted to them; check "
                          "the columns and the points")


def _distinct(values, at_least: int, what: str) -> None:
    found = len({tuple(v) if isinstance(v, (list, tuple)) else v for v in values})
    if found < at_least:
        raise ConfigError(f"need at least {at_least} distinct {what} to fit the law, got {found}: "
                          "repeated points cannot identify its parameters")


def _residuals(pred_fn, theta, inputs, log_l) -> tuple[float, float]:
    with torch.no_grad():
        res = pred_fn(theta, *inputs) - log_l
    return float(res.pow(2).mean().sqrt()), float(res.abs().max())


def fit_chinchilla(points: list[tuple[float, float, float]], bootstrap: int = 50,
                   seed: int = 0, progress: ProgressFn = no_progress) -> FitResult:
    """Fit ``L(N, D)`` to (N, D, L) points: at least 5 distinct (N, D), 2 distinct N and 2
    distinct D, with losses that fall as N D grows."""
    data = _check(points, 5)
    _distinct([(n, d) for n, d, _ in points], 5, "(N, D) points")
    _distinct([n for n, _, _ in points], 2, "N values")
    _distinct([d for _, d, _ in points], 2, "D values")
    log_n, log_d, log_l = data[:, 0].log(), data[:, 1].log(), data[:, 2].log()
    _check_identifiable(log_n + log_d, log_l, "N D")
    starts = _grid(CHINCHILLA_GRID, ("a", "b", "e", "alpha", "beta"))
    theta, loss = _minimise(_chinchilla_pred, (log_n, log_d), log_l, starts, progress)
    law = _chinchilla_from(theta)
    samples = _bootstrap(_chinchilla_pred, (log_n, log_d), log_l, theta, bootstrap, seed,
                         progress)
    names = ("a_coef", "b_coef", "e_irr", "a", "b")
    intervals = _intervals(samples, names, transform=(True, True, True, False, False))
    rms, worst = _residuals(_chinchilla_pred, theta, (log_n, log_d), log_l)
    return FitResult(law, loss, len(points), intervals, rms, worst, max(bootstrap, 0))


def fit_compute(points: list[tuple[float, float]], bootstrap: int = 50, seed: int = 0,
                progress: ProgressFn = no_progress) -> FitResult:
    """Fit ``L(C)`` to (C, L) points: at least 3 distinct C, with losses that fall as C
    grows."""
    data = _check(points, 3)
    _distinct([c for c, _ in points], 3, "compute values C")
    log_c, log_l = data[:, 0].log(), data[:, 1].log()
    _check_identifiable(log_c, log_l, "C")
    starts = _grid(COMPUTE_GRID, ("a", "e", "alpha"))
    theta, loss = _minimise(_compute_pred, (log_c,), log_l, starts, progress)
    law = _compute_from(theta)
    samples = _bootstrap(_compute_pred, (log_c,), log_l, theta, bootstrap, seed, progress)
    intervals = _intervals(samples, ("a", "l_inf", "alpha"), transform=(True, True, False))
    rms, worst = _residuals(_compute_pred, theta, (log_c,), log_l)
    return FitResult(law, loss, len(points), intervals, rms, worst, max(bootstrap, 0))


def _bootstrap(pred_fn, inputs, log_l, theta, n: int, seed: int,
               progress: ProgressFn = no_progress) -> torch.Tensor:
    """Refits on resampled points, each started from the full fit (L-BFGS only)."""
    if n <= 0:
        return torch.empty(0, theta.numel(), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        idx = torch.randint(0, log_l.numel(), (log_l.numel(),), generator=gen)
        sub_inputs = tuple(x[idx] for x in inputs)
        t = theta.clone().requires_grad_(True)
        # Tight tolerances: the summed Huber objective is tiny, and L-BFGS's defaults would
        # stop at once, leaving every refit at its start and the intervals falsely narrow
        # (the early stop Besiroglu et al. 2024 found in the original Chinchilla fit).
        lbfgs = torch.optim.LBFGS([t], lr=1.0, max_iter=500, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad()
            loss = _objective(pred_fn, t, sub_inputs, log_l[idx])
            loss.backward()
            return loss
        lbfgs.step(closure)
        out.append(t.detach())
        progress("fit: bootstrap refits", k + 1, n)
    return torch.stack(out)


def _intervals(samples: torch.Tensor, names, transform) -> dict:
    if samples.numel() == 0:
        return {}
    samples = samples[torch.isfinite(samples).all(dim=1)]  # a refit that diverged says nothing
    if samples.shape[0] < 2:
        return {}
    out = {}
    for i, (name, exp) in enumerate(zip(names, transform)):
        column = samples[:, i].exp() if exp else samples[:, i]
        if not torch.isfinite(column).all():
            continue
        low, high = torch.quantile(column, torch.tensor([0.025, 0.975], dtype=torch.float64))
        out[name] = (float(low), float(high))
    return out


def read_points(path: str | Path) -> tuple[str, list[tuple]]:
    """Read a CSV (UTF-8) with columns C, L (compute law) or N, D, L (Chinchilla form); every
    value a finite number, every row complete. Errors name the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}): save it as a UTF-8 CSV") from None
    except (csv.Error, OSError) as e:
        raise ConfigError(f"{path} cannot be read as CSV: {e}") from None
    if not rows:
        raise ConfigError(f"{path} has no rows")
    cols = {str(c).strip().upper(): c for c in rows[0] if c is not None}
    if {"N", "D", "L"} <= set(cols):
        kind, names = "chinchilla", ("N", "D", "L")
    elif {"C", "L"} <= set(cols):
        kind, names = "compute", ("C", "L")
    else:
        raise ConfigError(f"{path} needs columns C,L or N,D,L; it has "
                          f"{', '.join(str(c) for c in rows[0])}")
    points = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        values = []
        for name in names:
            raw = row.get(cols[name])
            try:
                value = float(raw)
            except (TypeError, ValueError):
                what = "is missing (a short row)" if raw in (None, "") else f"{raw!r} is not a number"
                raise ConfigError(f"{path} line {i}: {name} {what}") from None
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{path} line {i}: {name} = {raw.strip()} must be a finite "
                                  "positive number")
            values.append(value)
        points.append(tuple(values))
    return kind, points
