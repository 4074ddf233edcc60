"""Run one benchmark: resolve the device and preset, record the run, warm up, time a metered
window, compute the metrics and store them. ``report = run_bench(config, store)``.

The run row is written before any work starts and closed with ``ok``, ``failed`` or
``interrupted``; each write commits on its own, so an interrupted run leaves a valid database.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
import torch

from harness.device import DeviceContext, resolve_device
from harness.presets import Preset, default_preset, get_preset
from harness.scenarios import SCENARIOS
from profiler import metrics
from profiler.environment import collect_environment
from profiler.errors import ConfigError, EtameterError
from profiler.flops import check_convention
from profiler.meters.select import select_meter
from profiler.store import Store
from profiler.timing import TimedWindow



class Observer:
    """Receives a run's events (the CLI shows them); the default ignores them."""

    def started(self, run_id: str, config: dict) -> None:
        """The run is recorded and about to build its workload."""

    def progress(self, phase: str, done: int, total: int) -> None:
        """``phase`` is "cooldown", "idle", "warmup" or "timed"."""

MAX_AUTO_STEPS = 100_000


class RunFailed(EtameterError):
    """The benchmark ran but its result is not valid (for example the loss became NaN)."""


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark. ``None`` fields take the preset's or the device's default."""

    preset: str | None = None
    scenario: str = "train"
    batch_size: int | None = None
    seq_len: int | None = None
    steps: int | None = None  # timed steps; None: enough for target_window_s
    warmup_steps: int = 2
    target_window_s: float = 10.0
    precision: str | None = None
    attention_convention: str = "full"
    device: str = "auto"
    seed: int = 0
    cpu_tdp_w: float | None = None
    profile_files: tuple[str, ...] = ()  # extra hardware profile files
    idle_s: float = 0.0  # measure idle power for this long before the run (0: off)
    cooldown_s: float = 0.0  # wait this long before the idle measurement

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario must be one of {tuple(SCENARIOS)}, got {self.scenario!r}")
        for name in ("batch_size", "seq_len", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.target_window_s <= 0:
            raise ConfigError(f"target_window_s must be positive, got {self.target_window_s}")
        if self.cpu_tdp_w is not None and self.cpu_tdp_w <= 0:
            raise ConfigError(f"cpu_tdp_w must be positive, got {self.cpu_tdp_w}")
        if self.idle_s < 0 or self.cooldown_s < 0:
            raise ConfigError("idle_s and cooldown_s must be >= 0")
        check_convention(self.attention_convention)
        if self.preset is not None:
            get_preset(self.preset)


def _choose_preset(cfg: BenchConfig, ctx: DeviceContext) -> tuple[Preset, str]:
    if cfg.preset is not None:
        return get_preset(cfg.preset), "chosen with --preset"
    return default_preset(ctx.type, ctx.memory_gib)


def _auto_steps(cfg: BenchConfig, step_time_s: float, min_window_s: float) -> int:
    if cfg.steps is not None:
        return cfg.steps
    target_s = max(cfg.target_window_s, min_window_s)
    return max(3, min(MAX_AUTO_STEPS, math.ceil(target_s / max(step_time_s, 1e-9))))


def run_bench(cfg: BenchConfig, store: Store, observer: Observer | None = None,
              command: str = "", device: DeviceContext | None = None) -> dict:
    """Run the benchmark described by ``cfg`` and return the stored run with its result."""
    observer = observer or Observer()
    ctx = device or resolve_device(cfg.device, cfg.profile_files)
    preset, preset_reason = _choose_preset(cfg, ctx)
    batch = cfg.batch_size or preset.batch_size
    seq = cfg.seq_len or preset.seq_len
    if seq > preset.model.max_seq_len:
        raise ConfigError(f"--seq {seq} exceeds the {preset.name} preset's max_seq_len "
                          f"{preset.model.max_seq_len}")
    precision = cfg.precision or ctx.default_precision()
    scenario = SCENARIOS[cfg.scenario](preset.model, batch_size=batch, seq_len=seq,
                                       device=ctx.torch_device, precision=precision,
                                       seed=cfg.seed)
    flops = scenario.logical_flops(cfg.attention_convention)
    choice = select_meter(ctx.type, gpu_uuids=ctx.uuids, cpu_tdp_w=cfg.cpu_tdp_w)
    run_config = {
        **asdict(cfg), "preset": preset.name, "preset_reason": preset_reason,
        "batch_size": batch, "seq_len": seq, "precision": precision,
        "model": preset.model.to_dict(), "device": ctx.describe(),
        "meters_tried": choice.tried,
        "meter": choice.meter.describe() if choice.meter else None,
    }
    run_id = store.start_run(
        scenario=cfg.scenario, preset=preset.name, variant=precision, device=ctx.name,
        device_type=ctx.type, attention_convention=cfg.attention_convention,
        config=run_config, environment=collect_environment(ctx.type), command=command,
    )
    try:
        observer.started(run_id, run_config)
        idle = _idle_baseline(cfg, choice.meter, ctx, observer.progress)
        ceiling = store.latest_ceiling(ctx.key, "matmul", precision)
        result, reading = _measure(cfg, ctx, scenario, flops, choice, precision,
                                   observer.progress, ceiling)
        _add_idle(result, idle)
        store.add_result(run_id, result)
        if reading is not None:
            for device in reading.devices:
                store.add_power_samples(run_id, result["window"], device.device,
                                        device.power_trace)
        store.finish_run(run_id, "ok")
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except BaseException as e:
        store.finish_run(run_id, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        if choice.meter is not None:
            choice.meter.close()
    return store.get_run(run_id) | {"results": store.results(run_id)}


def _idle_baseline(cfg, meter, ctx, progress) -> dict | None:
    """Idle power before the run (after a cool-down), with the same meter, or None."""
    if cfg.idle_s <= 0 or meter is None:
        return None
    if cfg.cooldown_s > 0:
        progress("cooldown", 0, 1)
        time.sleep(cfg.cooldown_s)
        progress("cooldown", 1, 1)
    progress("idle", 0, 1)
    with TimedWindow(meter, ctx.synchronize) as window:
        time.sleep(cfg.idle_s)
    progress("idle", 1, 1)
    reading = window.energy
    return {"idle_power_w": reading.avg_power_w, "idle_duration_s": window.duration_s,
            "idle_energy_method": reading.method, "idle_estimated": reading.estimated,
            "idle_reason": reading.reason}


def _add_idle(result: dict, idle: dict | None) -> None:
    """Gross and net-of-idle energy: net = gross - idle power x window duration."""
    if idle is None:
        result["energy_net_reason"] = "no idle baseline was measured (use --idle-s)"
        return
    result["idle_power_w"] = idle["idle_power_w"]
    result["detail"]["idle"] = idle
    if result["energy_j"] is None or idle["idle_power_w"] is None:
        result["energy_net_reason"] = "gross energy or idle power is missing"
        return
    result["energy_net_j"] = result["energy_j"] - idle["idle_power_w"] * result["duration_s"]


def _measure(cfg, ctx, scenario, flops, choice, precision, progress, ceiling=None):
    scenario.setup()
    # Without --steps, at least one untimed step is needed to size the window.
    n_warmup = cfg.warmup_steps or (1 if cfg.steps is None else 0)
    step_time_s = float("inf")
    for i in range(n_warmup):
        ctx.synchronize()
        t0 = time.perf_counter()
        scenario.step()
        ctx.synchronize()
        # The fastest warm-up step predicts the timed steps best (the first ones pay for setup).
        step_time_s = min(step_time_s, time.perf_counter() - t0)
        progress("warmup", i + 1, n_warmup)
    min_window_s = choice.meter.min_window_s if choice.meter else 0.0
    steps = _auto_steps(cfg, step_time_s, min_window_s)
    # Without --steps, keep stepping until the meter's minimum window is met too.
    extend = cfg.steps is None

    losses = []
    with TimedWindow(choice.meter, ctx.synchronize) as window:
        done = 0
        while done < steps or (extend and window.elapsed_s() < min_window_s):
            loss = scenario.step()
            if loss is not None:
                losses.append(loss)
            done += 1
            progress("timed", done, max(steps, done))

    loss_values = torch.stack(losses).float().cpu().tolist() if losses else []
    if any(not math.isfinite(v) for v in loss_values):
        raise RunFailed(f"the loss became non-finite ({loss_values[-1]}) during the timed window")
    result = _metrics(ctx, flops, window, done, precision, choice, loss_values)
    _add_ceiling(result, ceiling, precision)
    return result, window.energy


def _add_ceiling(result: dict, ceiling: dict | None, precision: str) -> None:
    """MFU against the device's measured matmul ceiling, where it was calibrated."""
    if ceiling is None:
        result["ceiling_reason"] = (f"no {precision} matmul ceiling stored for this device: "
                                    "run etameter calibrate")
        return
    result["ceiling_flops_per_s"] = ceiling["value"]
    result["mfu_vs_ceiling"] = result["flops_per_s"] / ceiling["value"]
    result["detail"]["ceiling"] = {"calibration_id": ceiling["id"],
                                   "created_at": ceiling["created_at"], "size": ceiling["size"]}


def _metrics(ctx, flops, window, steps, precision, choice, loss_values) -> dict:
    duration_s = window.duration_s
    total_flops = flops.flops_per_step * steps
    tokens = flops.tokens_per_step * steps
    flops_per_s = total_flops / duration_s
    peak = ctx.peak(precision)
    mfu = metrics.mfu(flops_per_s, peak.flops_per_s, missing_reason=peak.source)
    reading = window.energy
    energy_j = reading.energy_j if reading else None
    energy_reason = (reading.reason if reading else choice.reason)
    eta = metrics.eta(total_flops, energy_j, missing_reason=energy_reason)
    flags = list(reading.all_flags) if reading else []
    return {
        "window": 0, "steps": steps, "tokens_per_step": flops.tokens_per_step,
        "duration_s": duration_s, "step_time_s": duration_s / steps,
        "tokens_per_s": tokens / duration_s,
        "logical_flops_per_token": flops.flops_per_token,
        "logical_flops_per_step": flops.flops_per_step, "logical_flops": total_flops,
        "flops_per_s": flops_per_s, "precision": precision,
        "peak_flops_per_s": peak.flops_per_s, "peak_source": peak.source,
        "mfu": mfu.value, "mfu_reason": mfu.reason,
        "energy_j": energy_j, "energy_method": reading.method if reading else None,
        "energy_scope": reading.scope if reading else None,
        "energy_estimated": reading.estimated if reading else None,
        "energy_reason": None if energy_j is not None else energy_reason,
        "avg_power_w": reading.avg_power_w if reading else None,
        "peak_power_w": reading.peak_power_w if reading else None,
        "eta_flops_per_j": eta.value, "eta_reason": eta.reason,
        "tokens_per_j": metrics.per_joule(tokens, energy_j),
        "attention_convention": flops.attention_convention, "flags": flags,
        "loss_first": loss_values[0] if loss_values else None,
        "loss_last": loss_values[-1] if loss_values else None,
        "detail": {
            "flops_breakdown_per_step": flops.per_step.to_dict(),
            "flops_notes": list(flops.notes),
            "energy_devices": [d.to_dict() for d in reading.devices] if reading else [],
        },
    }
