"""Timed windows: synchronise the device at both edges, time the region, meter its energy."""

from __future__ import annotations

import time
from typing import Callable

from profiler.meters.base import EnergyReading, Meter


def no_sync() -> None:
    """Synchronisation for devices that run eagerly (the CPU)."""


class TimedWindow:
    """Context manager around a measured region.

    On entry it synchronises the device, starts the meter and the clock; on exit it
    synchronises again, stops the clock and the meter. ``duration_s`` and ``energy`` are set
    on exit (``energy`` is None when no meter was given). If the region raises, the meter is
    still stopped so no background work outlives the window.
    """

    def __init__(self, meter: Meter | None = None, synchronize: Callable[[], None] = no_sync,
                 clock: Callable[[], float] = time.perf_counter):
        self.meter = meter
        self.synchronize = synchronize
        self.clock = clock
        self.duration_s: float | None = None
        self.energy: EnergyReading | None = None
        self._t0: float | None = None

    def __enter__(self) -> "TimedWindow":
        self.synchronize()
        if self.meter is not None:
            self.meter.start()
        self._t0 = self.clock()
        return self

    def elapsed_s(self) -> float:
        """Host time since the window opened, without synchronising (a lower bound of the
        device time: the host may run ahead of an asynchronous device)."""
        return self.clock() - self._t0

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.synchronize()
        finally:
            self.duration_s = self.clock() - self._t0
            if self.meter is not None:
                self.energy = self.meter.stop(self.duration_s)
