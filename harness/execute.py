"""Measure one variant of a plan and record it: the same code in this process, in a
per-variant worker and on every torchrun rank.

::

    capability checks and probes (the model's own shapes) -> memory estimate (skip if it
    cannot fit) -> reference fp32 model (seeded) -> quality reference (outside the variant's
    global settings: no TF32) -> the variant's global settings -> apply variant -> (DDP) ->
    compile -> idle baseline (model loaded) -> warm-up (first step timed: compile time) ->
    N timed windows -> quality check

Each timed window becomes a :class:`profiler.measurement.Window`; a
:class:`profiler.recorder.WindowRecorder` turns it into the stored row (under torchrun, rank 0
aggregates every rank's window into the node row). Only rank 0 writes to the store.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from harness.idle import idle_baseline
from harness.kernels import kernel_fallback
from harness.memory import PeakMemory, memory_shortfall
from harness.plan import Plan
from harness.quality import (Tolerance, compare_logits, compare_losses, logits_of,
                             quality_tokens, snapshot_state, train_losses)
from harness.scenarios import SCENARIOS
from harness.variants import (Variant, apply_variant, global_settings, maybe_compile,
                              moe_model_config, skip_reason)
from harness.variants.attention import sdpa_backends
from harness.variants.compile import MAX_EXTRA_WARMUP, CompileLog
from harness.variants.convert import reference_settings
from profiler.errors import EtameterError
from profiler.lifecycle import interrupt_reason
from profiler.measurement import NO_IDLE_REASON, Energy, Window
from profiler.meters.select import select_meter
from profiler.recorder import WindowRecorder, dist_group
from profiler.stats import geometric_interval, is_noisy
from profiler.timing import TimedWindow

MAX_AUTO_STEPS = 100_000
#: When auto-sized windows are noisy, windows are added up to this many in all, and for at
#: most ``target_window_s`` more seconds (so a noisy run takes at most twice its target).
MAX_WINDOWS = 10


class Observer:
    """Receives a run's events (the CLI shows them); the default ignores them."""

    def started(self, run_id: str, config: dict) -> None:
        """A run is recorded and about to build its workload."""

    def progress(self, phase: str, done: int, total: int) -> None:
        """``phase`` is "variants", "cooldown", "idle", "first step (compile)", "warmup" or
        "timed"; ``total`` 0: of unknown size."""


class VariantSkipped(EtameterError):
    """Found while measuring: the variant cannot be measured as itself here (its kernel
    does not run at this shape); the run is recorded skipped with the reason."""


class RunFailed(EtameterError):
    """The benchmark ran but its result is not valid (for example the loss became NaN)."""


def execute_variant(store, run_id: str, plan: Plan, observer: Observer | None = None) -> None:
    """Measure the plan's one variant and record it; every ending is recorded in the run's
    status (by rank 0 under torchrun)."""
    observer = observer or Observer()
    variant = plan.variants[0]
    dist = dist_group()
    writes = dist is None or dist.get_rank() == 0
    finish = (lambda status, error=None: store.finish_run(run_id, status, error)) if writes \
        else (lambda status, error=None: None)
    choice = None
    try:
        model_cfg = moe_model_config(plan.preset.model, variant)
        reason = skip_reason(variant, plan.cfg.scenario, plan.ctx.torch_device, model_cfg)
        memory, short = memory_shortfall(model_cfg, plan.cfg.scenario, plan.batch_size,
                                         plan.seq_len, plan.cfg.new_tokens, variant,
                                         plan.ctx.torch_device)
        if reason is None and short is not None:
            reason = f"out of memory expected: {variant.name} {short}"
        if reason is not None:
            finish("skipped", reason)
            return
        choice = select_meter(plan.ctx.meter_request(cpu_tdp_w=plan.cfg.cpu_tdp_w))
        if writes:
            store.update_run_config(run_id, {
                "meters_tried": choice.tried,
                "meter": choice.meter.describe() if choice.meter else None,
                "seq_len_reason": plan.seq_len_reason})
        with _exporter(plan, run_id, dist) as metrics:
            summary = _measure(store, run_id, plan, variant, choice, observer.progress, metrics)
        summary["memory_estimate_bytes"] = memory.total_bytes
        summary["memory_estimate"] = memory.to_dict()
        summary["seq_len_reason"] = plan.seq_len_reason
        if writes:
            quality = summary.get("quality")
            store.set_run_summary(run_id, summary, None if quality is None else quality["ok"])
        finish("ok")
    except VariantSkipped as e:
        finish("skipped", str(e))
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP (profiler.lifecycle)
        finish("interrupted", interrupt_reason(e))
        raise
    except torch.OutOfMemoryError as e:
        finish("failed", f"out of memory: {str(e).splitlines()[0]}")
        raise
    except BaseException as e:
        finish("failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        if choice is not None and choice.meter is not None:
            choice.meter.close()


def _exporter(plan: Plan, run_id, dist):
    """Live metrics of the run's windows (``--prometheus-port``/``--pushgateway``), or none."""
    cfg = plan.cfg
    if cfg.prometheus_port is None and cfg.pushgateway is None:
        return contextlib.nullcontext()
    from profiler.metrics_export import exporting, shared_run_id

    return exporting({"run_id": shared_run_id(run_id, dist), "variant": plan.variants[0].name,
                      "precision": plan.variants[0].compute_precision, "device": plan.ctx.name},
                     cfg.prometheus_port, cfg.pushgateway)


def _measure(store, run_id, plan: Plan, variant: Variant, choice, progress, metrics=None) -> dict:
    with PeakMemory(plan.ctx.torch_device) as peak_memory, contextlib.ExitStack() as settings:
        summary = _measure_in(store, run_id, plan, variant, choice, progress, settings, metrics)
    summary["peak_memory_bytes"] = peak_memory.peak_bytes
    summary["peak_memory_method"] = peak_memory.method
    return summary


def _measure_in(store, run_id, plan: Plan, variant: Variant, choice, progress, settings,
                metrics=None) -> dict:
    """The measurement; ``settings`` receives the variant's global settings once the quality
    reference is computed (the reference never runs under them: tf32 against fp32)."""
    cfg, ctx = plan.cfg, plan.ctx
    dist = dist_group()
    model_cfg = moe_model_config(plan.preset.model, variant)
    scenario = SCENARIOS[cfg.scenario](
        model_cfg, batch_size=plan.batch_size,
        seq_len=plan.seq_len, device=ctx.torch_device, variant=variant, seed=cfg.seed,
        new_tokens=cfg.new_tokens, rank=dist.get_rank() if dist else 0)
    flops = scenario.logical_flops(cfg.attention_convention)

    model = scenario.build_model()
    q_tokens = quality_tokens(scenario) if cfg.quality else None
    quality, reference = None, None
    if cfg.quality and cfg.scenario == "train":
        quality, info = _train_quality(model, scenario, variant, q_tokens, cfg.tolerance, settings)
    else:
        if cfg.quality:
            reference = _reference_logits(model, q_tokens, ctx.torch_device)
        settings.enter_context(global_settings(variant))
        info = apply_variant(model, variant, cfg.scenario, ctx.torch_device)
        fallback = kernel_fallback(model, variant, scenario, info)
        if fallback:
            raise VariantSkipped(fallback)
    info["attention_backends"] = sdpa_backends(model_cfg, variant, cfg.scenario, ctx.torch_device)
    if dist is not None and cfg.scenario == "train":
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            model, device_ids=[ctx.torch_device.index] if ctx.type == "cuda" else None)
    runnable = maybe_compile(model, variant)
    compiles = CompileLog(active=variant.compile is not None).start()
    settings.callback(compiles.stop)
    scenario.prepare(runnable)  # compiles["prepare"]: decode's prefill of the context
    # Idle power with the model loaded and the workload prepared: a baseline taken before
    # the weights are on the device understates the idle power of the run's device state.
    idle = idle_baseline(cfg, choice.meter, ctx, progress)

    compiles.phase("warmup")
    first_step_s, step_time_s = _warm_up(scenario, ctx, cfg.warmup_steps, progress, compiles)
    compiles.phase("timed")
    min_window_s = choice.meter.min_window_s if choice.meter else 0.0
    per_window_s = max(cfg.target_window_s / cfg.trials, min_window_s)
    steps = cfg.steps or max(3, min(MAX_AUTO_STEPS, math.ceil(per_window_s / max(step_time_s, 1e-9))))
    # Under torchrun every rank must take the same number of steps (DDP's collectives):
    # the slowest rank's count, and no step-by-step lengthening.
    steps = _agreed(steps, dist, ctx) if dist is not None else steps
    extend_to_s = min_window_s if cfg.steps is None and dist is None else 0.0
    ceiling = store.best_ceiling(ctx.key, "matmul", plan.reference_precision)
    peak, own = ctx.peak(plan.reference_precision), ctx.peak(variant.compute_precision)
    recorder = WindowRecorder(store if (dist is None or dist.get_rank() == 0) else None, run_id,
                              origin=time.perf_counter(),  # the meters' clock: traces line up
                              metrics=metrics)
    adaptive = cfg.steps is None and dist is None
    trial, extra_s = 0, 0.0
    while trial < cfg.trials or (adaptive and _noisy(recorder.rows) and trial < MAX_WINDOWS
                                 and extra_s < cfg.target_window_s):
        scenario.reset_latency()
        window, done, losses = _timed_window(scenario, choice.meter, ctx, steps, extend_to_s,
                                             progress, trial, max(cfg.trials, trial + 1))
        first_token_s, latencies_s, latency_reason = scenario.window_latency()
        if trial >= cfg.trials:
            extra_s += window.duration_s
        recorder.record(Window(
            window=trial, steps=done, duration_s=window.duration_s,
            tokens=flops.tokens_per_step * done, logical_flops=flops.flops_per_step * done,
            logical_flops_per_token=flops.flops_per_token,
            logical_flops_per_step=flops.flops_per_step,
            attention_convention=flops.attention_convention,
            precision=plan.reference_precision, peak_flops_per_s=peak.flops_per_s,
            peak_source=peak.source, variant_precision=variant.compute_precision,
            variant_peak_flops_per_s=own.flops_per_s, variant_peak_source=own.source,
            ceiling_flops_per_s=ceiling["value"] if ceiling else None,
            ceiling_reason=None if ceiling else (f"no {plan.reference_precision} matmul ceiling "
                                                 "stored for this device: run etameter calibrate"),
            energy=Energy.from_reading(window.energy, choice.reason), device_key=ctx.share_key,
            idle_power_w=idle["idle_power_w"] if idle else None,
            idle_reason=(idle["idle_reason"] or "idle power was not measured") if idle else NO_IDLE_REASON,
            loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
            detail={"ceiling": {k: ceiling[k] for k in ("id", "created_at", "size")}} if ceiling else {},
            power_traces=tuple((d.device, d.power_trace) for d in window.energy.devices
                               if d.power_trace) if window.energy else (),
            first_token_s=first_token_s, token_latencies_s=latencies_s,
            latency_reason=latency_reason))
        trial += 1

    compiles.phase("quality")
    if cfg.quality and reference is not None:
        quality = compare_logits(reference[0], logits_of(runnable, q_tokens, scenario.context()),
                                 cfg.tolerance, spread=reference[1])
    summary = recorder.summary()
    summary.update(
        steps_per_window=steps, first_step_s=first_step_s,
        windows_added_for_noise=max(0, trial - cfg.trials),
        **compiles.summary(),
        variant_info=info, quality=quality, idle=idle,
        world_size=dist.get_world_size() if dist else 1,
        flops_breakdown_per_step=flops.per_step.to_dict(), flops_notes=list(flops.notes))
    return summary


def _noisy(rows: list[dict]) -> bool:
    """Whether the throughput interval over the windows so far is wider than the threshold."""
    return is_noisy(geometric_interval([r["tokens_per_s"] for r in rows]))


def _warm_up(scenario, ctx, warmup_steps: int, progress, compiles) -> tuple[float, float]:
    """The first step (compilation, kernel selection: timed, reported, excluded), then the
    warm-up steps, and more (up to MAX_EXTRA_WARMUP) while a step still compiled, so every
    shape the timed steps run is compiled before them; returns the first step's time and
    the fastest step's."""
    before = compiles.count
    progress("first step (compile)", 0, 0)
    ctx.synchronize()
    t0 = time.perf_counter()
    scenario.step()
    ctx.synchronize()
    first_step_s = time.perf_counter() - t0
    progress("first step (compile)", 1, 1)
    fastest, compiled = first_step_s, compiles.count > before
    i, extra = 0, 0
    while i < warmup_steps or (compiled and extra < MAX_EXTRA_WARMUP):
        extra += i >= warmup_steps
        before = compiles.count
        i += 1
        ctx.synchronize()
        t0 = time.perf_counter()
        scenario.step()
        ctx.synchronize()
        fastest = min(fastest, time.perf_counter() - t0)
        compiled = compiles.count > before
        progress("warmup", min(i, warmup_steps), warmup_steps)
    return first_step_s, fastest


def _agreed(steps: int, dist, ctx) -> int:
    """The largest step count over the ranks."""
    t = torch.tensor([steps], device=ctx.torch_device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _reference_logits(model, tokens, device: torch.device):
    """The fp32 reference's logits, and the same model's under bf16 autocast (its own
    low-precision spread, which sets the positions top-1 agreement counts), both in exact
    fp32 settings."""
    with reference_settings():
        exact = logits_of(model, tokens, contextlib.nullcontext())
        try:
            spread = logits_of(model, tokens, torch.autocast(device.type, dtype=torch.bfloat16))
        except RuntimeError:  # a device without bf16 autocast: every position counts
            spread = None
    return exact, spread


def _train_quality(model, scenario, variant: Variant, tokens, tol: Tolerance, settings):
    """Loss over K steps, fp32 reference (exact fp32 settings) against the (uncompiled)
    variant under its global settings, both from the same initial weights; the weights are
    then put back so the benchmark starts from them too."""
    initial, kept = snapshot_state(model, scenario.device)
    with reference_settings():
        reference = train_losses(model, tokens, tol.train_steps, contextlib.nullcontext)
    model.load_state_dict(initial)
    settings.enter_context(global_settings(variant))
    info = apply_variant(model, variant, "train", scenario.device)
    scaler = (torch.amp.GradScaler(scenario.device.type)
              if variant.precision == "fp16-autocast" else None)
    losses = train_losses(model, tokens, tol.train_steps, scenario.context, scaler)
    model.load_state_dict(initial)
    info["quality_weights_kept_on"] = kept
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
            progress("timed", trial * steps + done, max(trials * steps, trial * steps + done))
    values = torch.stack(losses).float().cpu().tolist() if losses else []
    if any(not math.isfinite(v) for v in values):
        raise RunFailed(f"the loss became non-finite ({values[-1]}) during the timed window")
    return window, done, values
