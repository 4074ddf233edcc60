"""Burden of reaching a loss: energy, time and efficiency doublings (theory.md 3 and 4)."""

from __future__ import annotations

import math

from profiler.errors import ConfigError

J_PER_MWH = 3.6e9
J_PER_KWH = 3.6e6


def energy_j(compute_flop: float, eta_flops_per_j: float) -> float:
    """``E* = C* / eta``."""
    if eta_flops_per_j <= 0:
        raise ConfigError(f"eta must be positive, got {eta_flops_per_j}")
    return compute_flop / eta_flops_per_j


def eta_at(eta0: float, r_per_year: float, t_years: float) -> float:
    """``eta(t) = eta0 * 2^(r t)``."""
    return eta0 * 2.0 ** (r_per_year * t_years)


def cumulative_compute(budget_j_per_year: float, eta0: float, r_per_year: float,
                       t_years: float) -> float:
    """``C(t) = B eta0 (2^(r t) - 1) / (r ln 2)``; ``B eta0 t`` as r -> 0."""
    if r_per_year == 0:
        return budget_j_per_year * eta0 * t_years
    x = r_per_year * math.log(2) * t_years
    return budget_j_per_year * eta0 * math.expm1(x) / (r_per_year * math.log(2))


def years_to_compute(target_flop: float, budget_j_per_year: float, eta0: float,
                     r_per_year: float) -> float:
    """The t with ``C(t) = target`` under efficiency doubling r per year."""
    base = budget_j_per_year * eta0
    if r_per_year == 0:
        return target_flop / base
    return math.log2(1.0 + target_flop * r_per_year * math.log(2) / base) / r_per_year


def relative_excess_loss(compute_ratio: float, alpha: float) -> float:
    """``dL / dL_ref = (C / C_ref)^-alpha``."""
    return compute_ratio ** -alpha


def doublings_needed(target_flop: float, budget_j: float, eta_flops_per_j: float) -> float:
    """``log2(eta_required / eta_measured)`` with ``eta_required = C* / budget``; <= 0 means
    the measured efficiency already suffices."""
    ratio = target_flop / budget_j / eta_flops_per_j
    if not 0 < ratio < math.inf:
        raise ConfigError(f"efficiency doublings cannot be computed: the required eta is "
                          f"{ratio:.3g} times the measured one (compute {target_flop:.3g} FLOP, "
                          f"budget {budget_j:.3g} J)")
    return math.log2(ratio)
