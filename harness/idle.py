"""Idle power, measured once power has settled.

Right after the weights are uploaded and the quality check ran, a GPU's power is still
falling for several seconds; an idle window taken then overstates idle power (and so
understates the run's net energy). Before the idle window we either wait ``--cooldown-s``
(the user's choice) or, without one, take short metered windows until the last
``SETTLE_WINDOWS`` agree within ``SETTLE_TOLERANCE`` (at most ``SETTLE_MAX_S``); the result
says which happened, with the readings.
"""

from __future__ import annotations

import time
from typing import Callable

SETTLE_WINDOW_S = 1.0
SETTLE_WINDOWS = 3
SETTLE_TOLERANCE = 0.03
SETTLE_MAX_S = 30.0


def settle_power(read_power_w: Callable[[float], float | None], *,
                 window_s: float = SETTLE_WINDOW_S, windows: int = SETTLE_WINDOWS,
                 tolerance: float = SETTLE_TOLERANCE, max_s: float = SETTLE_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> dict:
    """Read ``read_power_w(window_s)`` (average W over a window of that length) until the
    last ``windows`` readings lie within ``tolerance`` of their mean, or ``max_s`` passed.
    Returns ``how`` ("settled", "not settled" or "unmeasured"), the time waited and the
    readings."""
    start, powers = clock(), []
    while True:
        power = read_power_w(window_s)
        if power is None:
            return {"how": "unmeasured", "waited_s": clock() - start, "powers_w": powers,
                    "reason": "the meter gives no power reading to wait on"}
        powers.append(power)
        last = powers[-windows:]
        mean = sum(last) / len(last)
        if len(last) == windows and mean > 0 and (max(last) - min(last)) <= tolerance * mean:
            return {"how": "settled", "waited_s": clock() - start, "powers_w": powers,
                    "reason": f"the last {windows} {window_s:g} s windows agree within "
                              f"{tolerance:.0%}"}
        if clock() - start >= max_s:
            return {"how": "not settled", "waited_s": clock() - start, "powers_w": powers,
                    "reason": f"power still changing after {max_s:g} s (last {windows} "
                              f"windows: {', '.join(f'{p:.0f}' for p in last)} W): idle "
                              "power may be overstated; pass --cooldown-s"}


def wait_before_idle(cooldown_s: float, read_power_w, progress=lambda *a: None,
                     sleep: Callable[[float], None] = time.sleep) -> dict:
    """``--cooldown-s`` if given (a fixed wait), else wait until power settles."""
    progress("cooldown", 0, 1)
    if cooldown_s > 0:
        sleep(cooldown_s)
        out = {"how": "cooldown", "waited_s": cooldown_s, "powers_w": [],
               "reason": f"waited --cooldown-s {cooldown_s:g} s"}
    else:
        out = settle_power(read_power_w)
    progress("cooldown", 1, 1)
    return out


def meter_power_reader(meter, synchronize) -> Callable[[float], float | None]:
    """Average power over a short metered window of the given length (None if unknown)."""
    from profiler.timing import TimedWindow

    def read(seconds: float) -> float | None:
        with TimedWindow(meter, synchronize) as window:
            time.sleep(seconds)
        return window.energy.avg_power_w if window.energy is not None else None
    return read


def idle_baseline(cfg, meter, ctx, progress) -> dict | None:
    """Idle power before the run (after the cool-down or once power has settled), with the
    same meter, or None when no idle window is asked for (``idle_s`` 0) or no meter."""
    if cfg.idle_s <= 0 or meter is None:
        return None
    from profiler.timing import TimedWindow

    settle = wait_before_idle(cfg.cooldown_s, meter_power_reader(meter, ctx.synchronize),
                              progress)
    progress("idle", 0, 1)
    with TimedWindow(meter, ctx.synchronize) as window:
        time.sleep(cfg.idle_s)
    progress("idle", 1, 1)
    reading = window.energy
    return {"idle_power_w": reading.avg_power_w, "idle_duration_s": window.duration_s,
            "idle_energy_method": reading.method, "idle_estimated": reading.estimated,
            "idle_reason": reading.reason, "idle_settle": settle}
