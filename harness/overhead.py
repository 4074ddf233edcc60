"""How much metering slows the measured work: the same workload with and without the meter,
interleaved, several times. A benchmark, not a test: its answer depends on the machine."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from hardware_profiles.device import DeviceContext
from harness.scenarios import SCENARIOS
from profiler.errors import ConfigError
from profiler.meters.select import select_meter
from profiler.stats import INCONCLUSIVE, WITHIN, limit_verdict, mean_interval
from profiler.timing import TimedWindow

#: Added step time we aim to stay under, in percent.
TARGET_PCT = {"cuda": 0.5, "cpu": 1.0}


@dataclass(frozen=True)
class OverheadConfig:
    preset: str | None = None
    repeats: int = 5
    steps: int = 5
    warmup_steps: int = 2
    device: str = "auto"
    cpu_tdp_w: float | None = None
    profile_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("repeats", "steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


def _window_step_time(scenario, steps: int, meter, ctx: DeviceContext) -> float:
    with TimedWindow(meter, ctx.synchronize) as window:
        for _ in range(steps):
            scenario.step()
    return window.duration_s / steps


def measure_overhead(cfg: OverheadConfig, progress=None) -> dict:
    """Median ratio of metered to unmetered step time over interleaved pairs of windows.

    The order alternates (metered first, then unmetered first) so drift in clocks or
    temperature does not favour either side.
    """
    from harness.plan import BenchConfig, make_plan

    progress = progress or (lambda phase, done, total: None)
    plan = make_plan(BenchConfig(preset=cfg.preset, device=cfg.device, cpu_tdp_w=cfg.cpu_tdp_w,
                                 profile_files=tuple(cfg.profile_files)))
    ctx, preset, variant = plan.ctx, plan.preset, plan.variants[0]
    choice = select_meter(ctx.meter_request(cpu_tdp_w=cfg.cpu_tdp_w))
    if choice.meter is None:
        raise ConfigError(f"no meter is available to measure the overhead of: {choice.reason}")
    scenario = SCENARIOS["train"](preset.model, batch_size=plan.batch_size,
                                  seq_len=plan.seq_len, device=ctx.torch_device,
                                  variant=variant)
    try:
        scenario.prepare(scenario.build_model())
        for i in range(cfg.warmup_steps):
            scenario.step()
            progress("warmup", i + 1, cfg.warmup_steps)
        metered, bare = [], []
        for r in range(cfg.repeats):
            order = (True, False) if r % 2 == 0 else (False, True)
            for with_meter in order:
                t = _window_step_time(scenario, cfg.steps, choice.meter if with_meter else None, ctx)
                (metered if with_meter else bare).append(t)
            progress("pairs", r + 1, cfg.repeats)
    finally:
        choice.meter.close()
    ratios = [m / b for m, b in zip(metered, bare)]
    median_ratio = statistics.median(ratios)
    return {
        "preset": preset.name, "device": ctx.name, "device_type": ctx.type,
        "variant": variant.name, "meter": choice.meter.method, "repeats": cfg.repeats,
        "steps_per_window": cfg.steps,
        "step_time_metered_s": metered, "step_time_unmetered_s": bare,
        "ratios": ratios, "median_ratio": median_ratio,
        "overhead_pct": (median_ratio - 1.0) * 100.0,
        "spread_pct": (max(ratios) - min(ratios)) * 100.0,
        **overhead_verdict(ratios, TARGET_PCT[ctx.type]),
    }


def overhead_verdict(ratios: list[float], target_pct: float) -> dict:
    """The verdict on metered/unmetered step-time ``ratios`` against ``target_pct``, from the
    95% interval of their mean (profiler.stats.limit_verdict): ``within target`` when its high
    end is under 1 + target, ``over target`` when its low end is over it, else ``inconclusive
    at this noise`` (also with fewer than two pairs, which give no interval)."""
    ci = mean_interval(ratios)
    verdict = limit_verdict(ci, 1.0 + target_pct / 100.0)
    reason = None
    if ci is None:
        reason = "fewer than two pairs: no interval (use --repeats 2 or more)"
    elif verdict == INCONCLUSIVE:
        reason = (f"the 95% interval of the overhead ({(ci.low - 1) * 100:+.2f}% to "
                  f"{(ci.high - 1) * 100:+.2f}%) straddles the target: use more --repeats, "
                  "more --steps, or a quieter machine")
    return {
        "target_pct": target_pct,
        "mean_ratio": ci.value if ci else None,
        "overhead_ci_low_pct": (ci.low - 1.0) * 100.0 if ci else None,
        "overhead_ci_high_pct": (ci.high - 1.0) * 100.0 if ci else None,
        "verdict": verdict, "verdict_reason": reason,
        "within_target": verdict == WITHIN,
    }
