"""Run benchmarks: one variant in this process, or a sweep with each variant in a fresh one.

For each variant the run row is written before any work starts and closed with ``ok``,
``skipped``, ``failed`` or ``interrupted``; each write commits on its own, so an interrupted
run leaves a valid database. A variant runs as::

    reference fp32 model (seeded) -> quality reference -> apply variant -> compile
    -> warm-up (first step timed: compile time) -> N timed windows -> quality check

Every window's metrics are stored; the run's summary holds their medians and spread.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import torch

from hardware_profiles.device import DeviceContext, resolve_device
from harness.presets import Preset, default_preset, get_preset
from harness.quality import (Tolerance, compare_logits, compare_losses, logits_of,
                             quality_tokens, train_losses)
from harness.scenarios import SCENARIOS
from harness.variants import (Variant, apply_variant, default_precision, global_settings,
                              maybe_compile, moe_model_config, parse_variant, skip_reason)
from profiler import metrics
from profiler.environment import collect_environment
from profiler.errors import ConfigError, EtameterError
from profiler.flops import check_convention
from profiler.meters.select import select_meter
from profiler.store import Store
from profiler.timing import TimedWindow

MAX_AUTO_STEPS = 100_000
#: Numeric result keys summarised by their median over the windows.
SUMMARY_KEYS = ("duration_s", "step_time_s", "tokens_per_s", "flops_per_s", "mfu",
                "mfu_vs_variant_peak", "mfu_vs_ceiling", "energy_j", "avg_power_w",
                "peak_power_w", "energy_net_j", "eta_flops_per_j", "tokens_per_j")


class Observer:
    """Receives a run's events (the CLI shows them); the default ignores them."""

    def started(self, run_id: str, config: dict) -> None:
        """A run is recorded and about to build its workload."""

    def progress(self, phase: str, done: int, total: int) -> None:
        """``phase`` is "variants", "cooldown", "idle", "warmup" or "timed"."""


class RunFailed(EtameterError):
    """The benchmark ran but its result is not valid (for example the loss became NaN)."""


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark. ``None`` fields take the preset's or the device's default."""

    preset: str | None = None
    scenario: str = "train"
    variants: tuple[str, ...] = ()  # empty: the device's default precision
    batch_size: int | None = None
    seq_len: int | None = None  # decode: the context length
    new_tokens: int = 16  # decode: tokens generated per sequence per step
    steps: int | None = None  # timed steps per window; None: enough for the window target
    trials: int = 3  # timed windows
    warmup_steps: int = 2
    target_window_s: float = 10.0  # all windows together, when steps is None
    attention_convention: str = "full"
    device: str = "auto"
    seed: int = 0
    cpu_tdp_w: float | None = None
    profile_files: tuple[str, ...] = ()
    idle_s: float = 0.0  # measure idle power for this long before the run (0: off)
    cooldown_s: float = 0.0  # wait this long before the idle measurement
    quality: bool = True
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario must be one of {tuple(SCENARIOS)}, got {self.scenario!r}")
        for name in ("batch_size", "seq_len", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        for name in ("new_tokens", "trials"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
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

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "BenchConfig":
        data = dict(data)
        data["tolerance"] = Tolerance(**data["tolerance"])
        for key in ("variants", "profile_files"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass
class Plan:
    """What a sweep will run, resolved once: device, preset, sizes and variants."""

    cfg: BenchConfig
    ctx: DeviceContext
    preset: Preset
    preset_reason: str
    batch_size: int
    seq_len: int
    variants: list[Variant]
    #: The first variant's compute precision: the vendor MFU denominator of the whole sweep.
    reference_precision: str = ""

    def __post_init__(self) -> None:
        self.reference_precision = self.reference_precision or self.variants[0].compute_precision


def make_plan(cfg: BenchConfig, ctx: DeviceContext | None = None) -> Plan:
    ctx = ctx or resolve_device(cfg.device, cfg.profile_files)
    if cfg.preset is not None:
        preset, reason = get_preset(cfg.preset), "chosen with --preset"
    else:
        preset, reason = default_preset(ctx.type, ctx.memory_gib)
    batch = cfg.batch_size or preset.batch_size
    seq = cfg.seq_len or preset.seq_len
    needed = seq + (cfg.new_tokens if cfg.scenario == "decode" else 0)
    if needed > preset.model.max_seq_len:
        raise ConfigError(f"--seq {seq}" + (f" + --new-tokens {cfg.new_tokens}" if cfg.scenario == "decode" else "")
                          + f" exceeds the {preset.name} preset's max_seq_len {preset.model.max_seq_len}")
    names = cfg.variants or (default_precision(cfg.scenario, ctx.type),)
    variants = [parse_variant(n, cfg.scenario, ctx.type) for n in names]
    seen = set()
    for v in variants:
        if v.name in seen:
            raise ConfigError(f"variant {v.name} is listed twice")
        seen.add(v.name)
    return Plan(cfg, ctx, preset, reason, batch, seq, variants)


# -- the sweep ------------------------------------------------------------------------------

def run_sweep(cfg: BenchConfig, store: Store, observer: Observer | None = None,
              command: str = "", device: DeviceContext | None = None) -> list[dict]:
    """Run every variant of ``cfg``; returns the stored runs, in order, with their results.

    One variant runs in this process; several run each in a fresh process (torchao and
    torch.compile change global state), with the same seeded weights and data.
    """
    observer = observer or Observer()
    plan = make_plan(cfg, device)
    env = collect_environment(plan.ctx.type)
    runs = []
    for i, variant in enumerate(plan.variants):
        run_id = _start_run(store, plan, variant, env, command)
        observer.started(run_id, store.get_run(run_id)["config"])
        if len(plan.variants) == 1:
            execute_variant(store, run_id, plan, variant, observer)
        else:
            observer.progress("variants", i, len(plan.variants))
            _execute_in_subprocess(store, run_id, plan, variant)
        runs.append(store.get_run(run_id) | {"results": store.results(run_id)})
    if len(plan.variants) > 1:
        observer.progress("variants", len(plan.variants), len(plan.variants))
    return runs


def run_bench(cfg: BenchConfig, store: Store, observer: Observer | None = None,
              command: str = "", device: DeviceContext | None = None) -> dict:
    """Run a single-variant benchmark and return its stored run."""
    if len(cfg.variants) > 1:
        raise ConfigError("run_bench runs one variant: use run_sweep for several")
    return run_sweep(cfg, store, observer, command, device)[0]


def _start_run(store: Store, plan: Plan, variant: Variant, env: dict, command: str) -> str:
    ctx, cfg = plan.ctx, plan.cfg
    config = {**cfg.to_json(), "preset": plan.preset.name, "preset_reason": plan.preset_reason,
              "batch_size": plan.batch_size, "seq_len": plan.seq_len,
              "variant": variant.to_dict(), "reference_precision": plan.reference_precision,
              "model": moe_model_config(plan.preset.model, variant).to_dict(),
              "device": ctx.describe()}
    return store.start_run(
        scenario=cfg.scenario, preset=plan.preset.name, variant=variant.name, device=ctx.name,
        device_type=ctx.type, attention_convention=cfg.attention_convention, config=config,
        environment=env, command=command)


def _execute_in_subprocess(store: Store, run_id: str, plan: Plan, variant: Variant) -> None:
    spec = {"config": plan.cfg.to_json(), "variant": variant.name,
            "reference_precision": plan.reference_precision, "run_id": run_id,
            "db": store.path}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "-m", "harness.worker", spec_path],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:
        # The worker, in our process group, got the same Ctrl-C and records it itself.
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if store.get_run(run_id)["status"] == "running":
            store.finish_run(run_id, "interrupted", "interrupted by the user (Ctrl-C)")
        raise
    finally:
        os.unlink(spec_path)
    if store.get_run(run_id)["status"] == "running":
        log.seek(0)
        tail = log.read()[-2000:].strip()
        store.finish_run(run_id, "failed", f"the worker process exited with code {returncode} "
                                           f"without recording a result: {tail}")


# -- one variant ----------------------------------------------------------------------------

def execute_variant(store: Store, run_id: str, plan: Plan, variant: Variant,
                    observer: Observer | None = None) -> None:
    """Measure one variant and record it; every ending is recorded in the run's status."""
    observer = observer or Observer()
    choice = None
    try:
        reason = skip_reason(variant, plan.cfg.scenario, plan.ctx.torch_device)
        if reason is not None:
            store.finish_run(run_id, "skipped", reason)
            return
        choice = select_meter(plan.ctx.type, gpu_uuids=plan.ctx.uuids, cpu_tdp_w=plan.cfg.cpu_tdp_w)
        store.update_run_config(run_id, {
            "meters_tried": choice.tried,
            "meter": choice.meter.describe() if choice.meter else None})
        with global_settings(variant):
            summary = _measure_variant(store, run_id, plan, variant, choice, observer.progress)
        quality = summary.get("quality")
        store.set_run_summary(run_id, summary, None if quality is None else quality["ok"])
        store.finish_run(run_id, "ok")
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except torch.OutOfMemoryError as e:
        store.finish_run(run_id, "failed", f"out of memory: {str(e).splitlines()[0]}")
        raise
    except BaseException as e:
        store.finish_run(run_id, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        if choice is not None and choice.meter is not None:
            choice.meter.close()


def _measure_variant(store, run_id, plan: Plan, variant: Variant, choice, progress) -> dict:
    cfg, ctx = plan.cfg, plan.ctx
    model_cfg = moe_model_config(plan.preset.model, variant)
    scenario = SCENARIOS[cfg.scenario](model_cfg, batch_size=plan.batch_size,
                                       seq_len=plan.seq_len, device=ctx.torch_device,
                                       variant=variant, seed=cfg.seed, new_tokens=cfg.new_tokens)
    flops = scenario.logical_flops(cfg.attention_convention)
    idle = _idle_baseline(cfg, choice.meter, ctx, progress)

    model = scenario.build_model()
    q_tokens = quality_tokens(scenario) if cfg.quality else None
    quality, reference_logits = None, None
    if cfg.quality and cfg.scenario == "train":
        quality, info = _train_quality(model, scenario, variant, q_tokens, cfg.tolerance)
    else:
        if cfg.quality:
            reference_logits = logits_of(model, q_tokens, contextlib.nullcontext())
        info = apply_variant(model, variant, cfg.scenario, ctx.torch_device)
    runnable = maybe_compile(model, variant)
    scenario.prepare(runnable)

    # The first step pays for compilation and kernel selection: timed, reported, excluded.
    ctx.synchronize()
    t0 = time.perf_counter()
    scenario.step()
    ctx.synchronize()
    first_step_s = time.perf_counter() - t0
    step_time_s = first_step_s
    for i in range(cfg.warmup_steps):
        ctx.synchronize()
        t0 = time.perf_counter()
        scenario.step()
        ctx.synchronize()
        step_time_s = min(step_time_s, time.perf_counter() - t0)
        progress("warmup", i + 1, cfg.warmup_steps)

    min_window_s = choice.meter.min_window_s if choice.meter else 0.0
    per_window_s = max(cfg.target_window_s / cfg.trials, min_window_s)
    steps = cfg.steps or max(3, min(MAX_AUTO_STEPS, math.ceil(per_window_s / max(step_time_s, 1e-9))))
    ceiling = store.latest_ceiling(ctx.key, "matmul", plan.reference_precision)
    origin = time.perf_counter()  # the meters' clock: power samples of all windows line up
    results = []
    for trial in range(cfg.trials):
        window, done, losses = _timed_window(scenario, choice.meter, ctx, steps,
                                             extend_to_s=min_window_s if cfg.steps is None else 0.0,
                                             progress=progress, trial=trial, trials=cfg.trials)
        result = _metrics(plan, variant, flops, window, done, choice, losses, ceiling)
        result["window"] = trial
        _add_idle(result, idle)
        store.add_result(run_id, result)
        if window.energy is not None:
            for device in window.energy.devices:
                store.add_power_samples(run_id, trial, device.device, device.power_trace, origin)
        results.append(result)

    if cfg.quality and reference_logits is not None:
        quality = compare_logits(reference_logits, logits_of(runnable, q_tokens, scenario.context()),
                                 cfg.tolerance)
    summary = summarise(results)
    summary.update(
        windows=len(results), steps_per_window=steps,
        first_step_s=first_step_s,
        compile_time_s=first_step_s - step_time_s if variant.compile else None,
        variant_info=info, quality=quality, idle=idle,
        logical_flops_per_step=flops.flops_per_step,
        flops_breakdown_per_step=flops.per_step.to_dict(), flops_notes=list(flops.notes))
    return summary


def _train_quality(model, scenario, variant: Variant, tokens, tol: Tolerance):
    """Loss over K steps, fp32 reference against the (uncompiled) variant, both from the same
    initial weights; the weights are then put back so the benchmark starts from them too."""
    initial = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    reference = train_losses(model, tokens, tol.train_steps, contextlib.nullcontext)
    model.load_state_dict(initial)
    info = apply_variant(model, variant, "train", scenario.device)
    scaler = (torch.amp.GradScaler(scenario.device.type)
              if variant.precision == "fp16-autocast" else None)
    losses = train_losses(model, tokens, tol.train_steps, scenario.context, scaler)
    model.load_state_dict(initial)
    return compare_losses(reference, losses, tol), info


def _timed_window(scenario, meter, ctx, steps: int, extend_to_s: float, progress, trial, trials):
    losses = []
    with TimedWindow(meter, ctx.synchronize) as window:
        done = 0
        while done < steps or window.elapsed_s() < extend_to_s:
            loss = scenario.step()
            if loss is not None:
                losses.append(loss)
            done += 1
            progress("timed", trial * steps + done, trials * steps)
    values = torch.stack(losses).float().cpu().tolist() if losses else []
    if any(not math.isfinite(v) for v in values):
        raise RunFailed(f"the loss became non-finite ({values[-1]}) during the timed window")
    return window, done, values


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
    if result["energy_j"] is None or idle["idle_power_w"] is None:
        result["energy_net_reason"] = "gross energy or idle power is missing"
        return
    result["energy_net_j"] = result["energy_j"] - idle["idle_power_w"] * result["duration_s"]


def _metrics(plan: Plan, variant: Variant, flops, window, steps, choice, loss_values,
             ceiling) -> dict:
    ctx = plan.ctx
    duration_s = window.duration_s
    total_flops = flops.flops_per_step * steps
    tokens = flops.tokens_per_step * steps
    flops_per_s = total_flops / duration_s
    peak = ctx.peak(plan.reference_precision)
    own_peak = ctx.peak(variant.compute_precision)
    mfu = metrics.mfu(flops_per_s, peak.flops_per_s, missing_reason=peak.source)
    own_mfu = metrics.mfu(flops_per_s, own_peak.flops_per_s, missing_reason=own_peak.source)
    reading = window.energy
    energy_j = reading.energy_j if reading else None
    energy_reason = reading.reason if reading else choice.reason
    eta = metrics.eta(total_flops, energy_j, missing_reason=energy_reason)
    result = {
        "steps": steps, "tokens_per_step": flops.tokens_per_step,
        "duration_s": duration_s, "step_time_s": duration_s / steps,
        "tokens_per_s": tokens / duration_s,
        "logical_flops_per_token": flops.flops_per_token,
        "logical_flops_per_step": flops.flops_per_step, "logical_flops": total_flops,
        "flops_per_s": flops_per_s, "precision": plan.reference_precision,
        "peak_flops_per_s": peak.flops_per_s, "peak_source": peak.source,
        "mfu": mfu.value, "mfu_reason": mfu.reason,
        "variant_precision": variant.compute_precision,
        "mfu_vs_variant_peak": own_mfu.value, "variant_peak_reason": own_mfu.reason,
        "energy_j": energy_j, "energy_method": reading.method if reading else None,
        "energy_scope": reading.scope if reading else None,
        "energy_estimated": reading.estimated if reading else None,
        "energy_reason": None if energy_j is not None else energy_reason,
        "avg_power_w": reading.avg_power_w if reading else None,
        "peak_power_w": reading.peak_power_w if reading else None,
        "eta_flops_per_j": eta.value, "eta_reason": eta.reason,
        "tokens_per_j": metrics.per_joule(tokens, energy_j),
        "attention_convention": flops.attention_convention,
        "flags": list(reading.all_flags) if reading else [],
        "loss_first": loss_values[0] if loss_values else None,
        "loss_last": loss_values[-1] if loss_values else None,
        "detail": {"energy_devices": [d.to_dict() for d in reading.devices] if reading else []},
    }
    if ceiling is None:
        result["ceiling_reason"] = (f"no {plan.reference_precision} matmul ceiling stored for "
                                    "this device: run etameter calibrate")
    else:
        result["ceiling_flops_per_s"] = ceiling["value"]
        result["mfu_vs_ceiling"] = flops_per_s / ceiling["value"]
        result["detail"]["ceiling"] = {"calibration_id": ceiling["id"],
                                       "created_at": ceiling["created_at"], "size": ceiling["size"]}
    return result


def summarise(results: list[dict]) -> dict:
    """Medians over the windows, the spread of throughput, and the labels of the first."""
    summary: dict = {}
    for key in SUMMARY_KEYS:
        values = [r.get(key) for r in results]
        summary[key] = statistics.median(values) if values and None not in values else None
    tps = [r["tokens_per_s"] for r in results]
    summary["tokens_per_s_spread"] = (max(tps) - min(tps)) / statistics.median(tps) if tps else None
    first = results[0] if results else {}
    for key in ("tokens_per_step", "logical_flops_per_token", "precision", "peak_flops_per_s",
                "peak_source", "mfu_reason", "variant_precision", "variant_peak_reason",
                "ceiling_flops_per_s", "ceiling_reason", "energy_method", "energy_scope",
                "energy_estimated", "energy_reason", "eta_reason", "energy_net_reason",
                "idle_power_w", "attention_convention"):
        summary[key] = first.get(key)
    summary["flags"] = sorted({f for r in results for f in r.get("flags", [])})
    summary["loss_first"] = first.get("loss_first")
    summary["loss_last"] = results[-1].get("loss_last") if results else None
    return summary
