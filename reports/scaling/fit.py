"""Fit a scaling law to measured points the way Chinchilla did.

- Huber loss (delta 1e-3) on log-loss residuals, summed over points, not averaged;
- the log-sum-exp parametrization: ``log L = LSE(a - alpha log N, b - beta log D, e)`` with
  ``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)`` (and ``LSE(a - alpha log C, e)`` for the
  compute law);
- L-BFGS from a grid of starting points. All starts first take a vectorised Adam pass
  together, then the best few are refined with L-BFGS (strong Wolfe line search);
- bootstrap confidence intervals: refits on points resampled with replacement.

Runs in float64 with torch (already a dependency), on the CPU.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import torch

from profiler.errors import ConfigError
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


def _minimise(pred_fn, inputs, log_l, starts: torch.Tensor) -> tuple[torch.Tensor, float]:
    theta = starts.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, ADAM_STEPS)
    for _ in range(ADAM_STEPS):
        opt.zero_grad()
        _objective(pred_fn, theta, inputs, log_l).sum().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        losses = _objective(pred_fn, theta, inputs, log_l)
        losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
    best_theta, best_loss = None, float("inf")
    for idx in torch.argsort(losses)[:REFINE_TOP]:
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
    return best_theta, best_loss


@dataclass
class FitResult:
    law: ComputeLaw | ChinchillaLaw
    objective: float
    points: int
    intervals: dict  # parameter -> (low, high), 95% bootstrap

    def to_dict(self) -> dict:
        return {"law": self.law.to_dict(), "objective": self.objective, "points": self.points,
                "confidence_95": {k: list(v) for k, v in self.intervals.items()}}


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
    data = torch.tensor(points, dtype=torch.float64)
    if (data <= 0).any():
        raise ConfigError("every compute, N, D and loss value must be positive")
    return data


def fit_chinchilla(points: list[tuple[float, float, float]], bootstrap: int = 50,
                   seed: int = 0) -> FitResult:
    """Fit ``L(N, D)`` to (N, D, L) points."""
    data = _check(points, 5)
    log_n, log_d, log_l = data[:, 0].log(), data[:, 1].log(), data[:, 2].log()
    starts = _grid(CHINCHILLA_GRID, ("a", "b", "e", "alpha", "beta"))
    theta, loss = _minimise(_chinchilla_pred, (log_n, log_d), log_l, starts)
    law = _chinchilla_from(theta)
    samples = _bootstrap(_chinchilla_pred, (log_n, log_d), log_l, theta, bootstrap, seed)
    names = ("a_coef", "b_coef", "e_irr", "a", "b")
    intervals = _intervals(samples, names, transform=(True, True, True, False, False))
    return FitResult(law, loss, len(points), intervals)


def fit_compute(points: list[tuple[float, float]], bootstrap: int = 50, seed: int = 0) -> FitResult:
    """Fit ``L(C)`` to (C, L) points."""
    data = _check(points, 3)
    log_c, log_l = data[:, 0].log(), data[:, 1].log()
    starts = _grid(COMPUTE_GRID, ("a", "e", "alpha"))
    theta, loss = _minimise(_compute_pred, (log_c,), log_l, starts)
    law = _compute_from(theta)
    samples = _bootstrap(_compute_pred, (log_c,), log_l, theta, bootstrap, seed)
    intervals = _intervals(samples, ("a", "l_inf", "alpha"), transform=(True, True, False))
    return FitResult(law, loss, len(points), intervals)


def _bootstrap(pred_fn, inputs, log_l, theta, n: int, seed: int) -> torch.Tensor:
    """Refits on resampled points, each started from the full fit (L-BFGS only)."""
    if n <= 0:
        return torch.empty(0, theta.numel(), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
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
    return torch.stack(out)


def _intervals(samples: torch.Tensor, names, transform) -> dict:
    if samples.numel() == 0:
        return {}
    out = {}
    for i, (name, exp) in enumerate(zip(names, transform)):
        column = samples[:, i].exp() if exp else samples[:, i]
        low, high = torch.quantile(column, torch.tensor([0.025, 0.975], dtype=torch.float64))
        out[name] = (float(low), float(high))
    return out


def read_points(path: str | Path) -> tuple[str, list[tuple]]:
    """Read a CSV with columns C, L (compute law) or N, D, L (Chinchilla form)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ConfigError(f"{path} has no rows")
    cols = {c.strip().upper(): c for c in rows[0]}
    try:
        if {"N", "D", "L"} <= set(cols):
            return "chinchilla", [(float(r[cols["N"]]), float(r[cols["D"]]), float(r[cols["L"]])) for r in rows]
        if {"C", "L"} <= set(cols):
            return "compute", [(float(r[cols["C"]]), float(r[cols["L"]])) for r in rows]
    except ValueError as e:
        raise ConfigError(f"{path}: a value is not a number ({e})") from e
    raise ConfigError(f"{path} needs columns C,L or N,D,L; it has {', '.join(rows[0])}")
