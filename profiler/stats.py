"""Repeatability: 95% intervals over windows, ratios of two runs, and the noise threshold.

Intervals are Student-t intervals of the mean over a run's windows (n >= 2), and for a
ratio of two runs (a speedup, an eta gain) the interval of ``mean_a / mean_b`` from the
standard errors of both on the log scale (Welch). A ratio whose interval contains 1.0 is no
significant difference. With fewer than two windows there is no interval (None), never a
made-up one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

#: A run is ``noisy`` when the 95% interval of its throughput is wider than this, relative to
#: the mean (half-width / mean): +-5%.
NOISE_THRESHOLD = 0.05
NOISY_ADVICE = ("use more windows (--trials), longer windows (--window-s), or a quieter "
                "machine")

# Two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30; beyond, the normal 1.96.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: float) -> float:
    """The two-sided 95% Student-t quantile for ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[min(int(df), len(_T975)) - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Interval:
    """A mean (or ratio) with its 95% interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def mean_interval(values: list[float]) -> Interval | None:
    """The mean of ``values`` with its 95% t-interval; None for fewer than two values."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half)


def geometric_interval(values: list[float]) -> Interval | None:
    """The geometric mean of positive ``values`` with its 95% t-interval on the log scale:
    for rates and energies, whose interval must not reach below zero on a noisy run. None for
    fewer than two values, or any value that is not positive."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or any(v <= 0 for v in values):
        return None
    logs = [math.log(v) for v in values]
    centre = statistics.fmean(logs)
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return Interval(math.exp(centre), math.exp(centre - half), math.exp(centre + half))


def ratio_interval(a: list[float], b: list[float]) -> Interval | None:
    """``mean(a) / mean(b)`` with its 95% interval (log scale, Welch degrees of freedom);
    None when either side has fewer than two values or a non-positive mean."""
    a = [v for v in a if v is not None]
    b = [v for v in b if v is not None]
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    if ma <= 0 or mb <= 0:
        return None
    va = statistics.variance(a) / len(a) / ma ** 2  # variance of log(mean) (delta method)
    vb = statistics.variance(b) / len(b) / mb ** 2
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if va else 0) + (vb ** 2 / (len(b) - 1) if vb else 0)) \
        if va or vb else float(len(a) + len(b) - 2)
    ratio = ma / mb
    half = t975(max(1.0, df)) * se
    return Interval(ratio, ratio * math.exp(-half), ratio * math.exp(half))


def is_noisy(interval: Interval | None) -> bool:
    """Whether a (log-scale) interval reaches further than ``NOISE_THRESHOLD`` from its centre:
    its upper end above ``value x (1 + threshold)``."""
    return interval is not None and interval.high > interval.value * (1 + NOISE_THRESHOLD)


def noise_note(interval: Interval | None, what: str = "tokens/s",
               advice: str | None = None) -> str | None:
    """Why a run is noisy (its interval is wider than the threshold), or None, ending in
    ``advice`` (bench's: NOISY_ADVICE). The interval is on the log scale
    (:func:`geometric_interval`), so its width is a factor."""
    if not is_noisy(interval):
        return None
    factor = interval.high / interval.value
    return (f"the 95% interval of {what} spans {interval.low:.4g} to {interval.high:.4g}, a "
            f"factor of {factor:.3g} either side of the geometric mean (threshold "
            f"{1 + NOISE_THRESHOLD:g}): {advice or NOISY_ADVICE}")


#: The verdict of a ratio whose 95% interval contains 1.0.
NO_DIFFERENCE = "no significant difference"


def ratio_verdict(interval: Interval | None, above: str = "higher",
                  below: str = "lower") -> str | None:
    """``above`` when the whole 95% interval of a ratio lies above 1.0, ``below`` when it lies
    below, :data:`NO_DIFFERENCE` when it contains 1.0; None without an interval."""
    if interval is None:
        return None
    if interval.low > 1.0:
        return above
    if interval.high < 1.0:
        return below
    return NO_DIFFERENCE


#: The verdicts of :func:`limit_verdict`.
WITHIN, OVER, INCONCLUSIVE = "within target", "over target", "inconclusive at this noise"


def limit_verdict(interval: Interval | None, limit: float) -> str:
    """Whether a quantity stays under ``limit``: :data:`WITHIN` when the high end of its 95%
    interval is below it, :data:`OVER` when the low end is above it, else (or without an
    interval) :data:`INCONCLUSIVE`."""
    if interval is not None and interval.high < limit:
        return WITHIN
    if interval is not None and interval.low > limit:
        return OVER
    return INCONCLUSIVE


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of sorted ``values``, linearly interpolated between the two
    nearest ranks (numpy's default, "linear")."""
    pos = (len(values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


#: The per-token latency percentiles a row carries: (row key, percentile).
LATENCY_PERCENTILES = (("token_latency_p50_s", 50), ("token_latency_p90_s", 90),
                       ("token_latency_p99_s", 99))
