"""MFU and eta from a timed window (theory.md section 2).

A metric that cannot be computed honestly is ``None`` with a reason, never zero or a guess.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A value that may be missing; ``reason`` says why when ``value`` is None."""

    value: float | None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> "Metric":
        return cls(None, reason)


def mfu(flops_per_s: float, peak_flops_per_s: float | None, n_devices: int = 1,
        missing_reason: str | None = None) -> Metric:
    """Model FLOPs utilisation: ``R / (n_devices * F_peak)``."""
    if peak_flops_per_s is None or peak_flops_per_s <= 0:
        return Metric.missing(missing_reason or "the device's dense peak FLOP/s is unknown")
    if n_devices <= 0:
        raise ValueError(f"n_devices must be positive, got {n_devices}")
    return Metric(flops_per_s / (n_devices * peak_flops_per_s))


def eta(logical_flops: float, energy_j: float | None,
        missing_reason: str | None = None) -> Metric:
    """Logical compute efficiency ``C / E`` in logical FLOPs per joule."""
    if energy_j is None:
        return Metric.missing(missing_reason or "energy was not measured")
    if energy_j <= 0:
        return Metric.missing(f"energy reading of {energy_j} J is not positive")
    return Metric(logical_flops / energy_j)


def per_joule(quantity: float, energy_j: float | None) -> float | None:
    """``quantity / energy_j``, or None when the energy is missing or not positive."""
    if energy_j is None or energy_j <= 0:
        return None
    return quantity / energy_j


def per_second(quantity: float | None, duration_s: float) -> float | None:
    """``quantity / duration_s`` (for example average power from energy), or None."""
    if quantity is None or duration_s <= 0:
        return None
    return quantity / duration_s
