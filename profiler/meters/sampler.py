"""A background thread that calls a function at a fixed interval, and trapezoid integration.

The function does the reading (NVML power, RAPL counters); the sampler only keeps time.
Device library calls run in the sampler's thread, so the measured loop pays no polling cost.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence


class Sampler:
    """Calls ``poll()`` every ``interval_s`` on a daemon thread between start() and stop().

    ``poll`` is also called once at start() and once at stop(), so the window's edges are
    always sampled. An exception in ``poll`` stops the sampling and is re-raised by stop().
    """

    def __init__(self, poll: Callable[[], None], interval_s: float):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.poll = poll
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        next_t = time.perf_counter() + self.interval_s
        while not self._stop.wait(max(0.0, next_t - time.perf_counter())):
            try:
                self.poll()
            except BaseException as e:  # surfaced by stop(); a dead sampler must not go unseen
                self._error = e
                return
            next_t += self.interval_s

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("Sampler already started")
        self._stop.clear()
        self._error = None
        self.poll()
        self._thread = threading.Thread(target=self._run, name="etameter-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        self.poll()

    def cancel(self) -> None:
        """Stop without a final poll and without raising: for clean-up after an error."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


def trapezoid_j(times_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Energy in J of a power trace (W) sampled at ``times_s`` (s), by the trapezoid rule."""
    if len(times_s) != len(power_w):
        raise ValueError("times_s and power_w differ in length")
    return sum((t1 - t0) * (p0 + p1) / 2.0
               for t0, t1, p0, p1 in zip(times_s, times_s[1:], power_w, power_w[1:]))
