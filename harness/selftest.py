"""``etameter selftest``: one command that makes a GPU session count.

It runs, in order, each step of :data:`STEPS` and writes ``summary.json`` and ``summary.md``
in the output folder. On a GPU (``--gpu``) it takes under 20 minutes on one H100:

1. ``detect``: the device, its profile match and the evidence;
2. ``meters``: the meter chosen, the ones tried, the power source and the power and counter
   update periods;
3. ``idle_and_load``: idle power (3 s), then the energy counter against the sampled power
   integral on a 10 s bf16 matmul load, with the average power against idle and the limit;
4. ``calibration``: the measured matmul ceilings and copy bandwidth against the datasheet;
5. ``default_runs``: ``etameter bench`` of train, prefill and decode with no sizes given,
   each with its memory estimate against the measured peak;
6. ``variant_sweep``: every variant of train and prefill; each must be ok or skipped;
7. ``llama_1b``: llama-1b training in bf16, fp8 and compiled: MFU, eta, tokens/s;
8. ``pytest_gpu``: ``pytest -m gpu``.

``--dry-run`` runs every step on the CPU at the tiny sizes, so CI proves the machinery end
to end; a step that needs a GPU is recorded as ``skipped`` with the reason. A step that
raises is ``failed`` with the error; the others still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

GPU_ONLY = "needs a CUDA GPU (dry run on the CPU)"


class StepSkipped(Exception):
    """A step that cannot run here; the message is the reason."""


def metered_idle_and_load(meter, idle_s: float, load_s: float):
    """An idle window of ``idle_s`` then a matmul load of ``load_s``, both metered; returns
    the two windows."""
    from profiler.timing import TimedWindow

    with TimedWindow(meter, torch.cuda.synchronize) as idle:
        time.sleep(idle_s)
    return idle, metered_matmul_load(meter, load_s)


def metered_matmul_load(meter, seconds: float = 10.0, n: int = 8192):
    """A bf16 matmul load of at least ``seconds`` on the current GPU, inside one metered
    window; returns the window (its ``energy`` holds the counter and the power integral)."""
    from profiler.timing import TimedWindow

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    with TimedWindow(meter, torch.cuda.synchronize) as window:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(20):
                a @ b
            torch.cuda.synchronize()
    return window


@dataclass(frozen=True)
class SelftestConfig:
    out_dir: str
    dry_run: bool = False
    db_path: str | None = None  # default: OUT/selftest.db

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"

    @property
    def db(self) -> str:
        return self.db_path or str(Path(self.out_dir) / "selftest.db")


# -- sizes: (dry run, GPU) ---------------------------------------------------------------------

def _sizes(cfg: SelftestConfig) -> dict:
    if cfg.dry_run:
        return {"preset": "tiny", "steps": 2, "trials": 1, "warmup_steps": 0,
                "target_window_s": 0.2}
    return {"preset": None, "trials": 2, "warmup_steps": 2, "target_window_s": 6.0}


SWEEP = {  # scenario -> variants (GPU); the dry run takes DRY_SWEEP
    "train": ("bf16-autocast", "fp32", "tf32", "fp16-autocast", "fp8-tensorwise", "fp8-rowwise",
              "2:4", "moe", "bf16-autocast+sdpa-math", "bf16-autocast+sdpa-flash",
              "bf16-autocast+sdpa-efficient", "bf16-autocast+sdpa-cudnn", "compile",
              "compile-max-autotune"),
    "prefill": ("bf16", "fp16", "fp8", "int8-weight-only", "int8-dynamic", "int4-weight-only",
                "2:4", "bf16+sdpa-math", "bf16+sdpa-flash", "bf16+sdpa-efficient", "compile"),
}
DRY_SWEEP = {"train": ("fp32", "fp32+moe-4-2"),
             "prefill": ("fp32", "fp32+sdpa-math", "int8-weight-only", "2:4")}
SWEEP_PRESET = "gpt2-124m"  # small enough that the whole GPU sweep takes a few minutes


def _bench(cfg: SelftestConfig, scenario: str, variants=(), **overrides) -> list[dict]:
    from harness.plan import BenchConfig
    from harness.runner import run_sweep
    from profiler.store import Store

    sizes = {**_sizes(cfg), **overrides}
    bench = BenchConfig(scenario=scenario, variants=tuple(variants), device=cfg.device, **sizes)
    runs = run_sweep(bench, Store(cfg.db), command=f"selftest {scenario}")
    return [_run_figures(r) for r in runs]


def _run_figures(run: dict) -> dict:
    summary = run.get("summary") or {}
    keys = ("tokens_per_s", "mfu", "mfu_reason", "eta_flops_per_j", "avg_power_w",
            "energy_method", "flags", "memory_estimate_bytes", "peak_memory_bytes",
            "peak_memory_method", "quality_ok", "compile_time_s", "seq_len_reason")
    return {"variant": run["variant"], "status": run["status"], "reason": run.get("error"),
            "preset": run["preset"], **{k: summary.get(k) for k in keys},
            "attention_backends": (summary.get("variant_info") or {}).get("attention_backends")}


# -- the steps ---------------------------------------------------------------------------------

def step_detect(cfg: SelftestConfig, state: dict) -> dict:
    from hardware_profiles.device import resolve_device

    ctx = resolve_device(cfg.device)
    state["ctx"] = ctx
    return ctx.describe()


def step_meters(cfg: SelftestConfig, state: dict) -> dict:
    from profiler.meters.select import select_meter

    choice = select_meter(state["ctx"].meter_request())
    try:
        described = choice.meter.describe() if choice.meter else None
    finally:
        if choice.meter is not None:
            choice.meter.close()
    return {"meter": described, "tried": choice.tried, "reason": choice.reason}


def step_idle_and_load(cfg: SelftestConfig, state: dict) -> dict:
    if cfg.dry_run:
        raise StepSkipped(GPU_ONLY)
    from profiler.meters.nvml import NvmlMeter

    meter = NvmlMeter(uuids=state["ctx"].uuids or None)
    try:
        idle, load = metered_idle_and_load(meter, 3.0, 10.0)
    finally:
        meter.close()
    gpu = load.energy.devices[0]
    return {"idle_power_w": idle.energy.avg_power_w, "load_power_w": gpu.avg_power_w,
            "power_limit_w": gpu.detail["power_limit_w"], "duration_s": load.duration_s,
            "counter_energy_j": gpu.detail["counter_energy_j"],
            "integral_energy_j": gpu.detail["integral_energy_j"],
            "relative_disagreement": gpu.detail["relative_disagreement"],
            "flags": list(gpu.flags), "clock_event_reasons": gpu.detail.get("clock_event_reasons"),
            "sampling_errors": gpu.detail.get("sampling_errors")}


def step_calibration(cfg: SelftestConfig, state: dict) -> dict:
    from hardware_profiles.calibrate import CalibrationConfig, calibrate, compare_with_datasheet

    ctx = state["ctx"]
    small = CalibrationConfig(precisions=("fp32",), repeats=2, n_max=512,
                              copy_bytes=16 * 2**20) if cfg.dry_run else CalibrationConfig(repeats=3)
    result = calibrate(ctx.torch_device, ctx.synchronize, small)
    return {"results": compare_with_datasheet(ctx, result["results"]), "skipped": result["skipped"]}


def step_default_runs(cfg: SelftestConfig, state: dict) -> dict:
    runs = {s: _bench(cfg, s)[0] for s in ("train", "prefill", "decode")}
    state["runs"] = list(runs.values())
    bad = {s: r["reason"] for s, r in runs.items() if r["status"] != "ok"}
    if bad:
        raise RuntimeError(f"default runs not ok: {bad}")
    return runs


def step_variant_sweep(cfg: SelftestConfig, state: dict) -> dict:
    table = DRY_SWEEP if cfg.dry_run else SWEEP
    extra = {} if cfg.dry_run else {"preset": SWEEP_PRESET, "target_window_s": 2.0, "trials": 1}
    out = {s: _bench(cfg, s, variants, **extra) for s, variants in table.items()}
    state["runs"] = state.get("runs", []) + [r for runs in out.values() for r in runs]
    failed = [f"{s} {r['variant']}: {r['reason']}" for s, runs in out.items() for r in runs
              if r["status"] not in ("ok", "skipped")]
    if failed:
        raise RuntimeError("variants neither ok nor skipped: " + "; ".join(failed))
    return out


def step_peak_memory(cfg: SelftestConfig, state: dict) -> dict:
    rows = [{"variant": r["variant"], "preset": r["preset"],
             "estimate_bytes": r["memory_estimate_bytes"], "peak_bytes": r["peak_memory_bytes"],
             "method": r["peak_memory_method"],
             "ratio": (r["peak_memory_bytes"] / r["memory_estimate_bytes"]
                       if r["peak_memory_bytes"] and r["memory_estimate_bytes"] else None)}
            for r in state.get("runs", []) if r["status"] == "ok"]
    if not rows:
        raise StepSkipped("no run finished ok")
    return {"runs": rows}


def step_llama_1b(cfg: SelftestConfig, state: dict) -> dict:
    if cfg.dry_run:
        raise StepSkipped(GPU_ONLY)
    runs = _bench(cfg, "train", ("bf16-autocast", "fp8-tensorwise", "bf16-autocast+compile"),
                  preset="llama-1b", target_window_s=6.0, trials=2)
    return {r["variant"]: r for r in runs}


def step_pytest_gpu(cfg: SelftestConfig, state: dict) -> dict:
    if cfg.dry_run:
        raise StepSkipped(GPU_ONLY)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs",
                           "tests/test_gpu.py"], capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).resolve().parent.parent)
    tail = proc.stdout[-3000:]
    if proc.returncode != 0:
        raise RuntimeError(f"pytest -m gpu exited {proc.returncode}: {tail}")
    return {"returncode": proc.returncode, "tail": tail}


STEPS: list[tuple[str, Callable[[SelftestConfig, dict], dict]]] = [
    ("detect", step_detect), ("meters", step_meters), ("idle_and_load", step_idle_and_load),
    ("calibration", step_calibration), ("default_runs", step_default_runs),
    ("variant_sweep", step_variant_sweep), ("peak_memory", step_peak_memory),
    ("llama_1b", step_llama_1b), ("pytest_gpu", step_pytest_gpu),
]


def run_selftest(cfg: SelftestConfig, log: Callable[[str], None] = lambda line: None) -> dict:
    """Run every step, write summary.json and summary.md in ``cfg.out_dir``; the summary."""
    if not cfg.dry_run and not torch.cuda.is_available():
        from profiler.errors import ConfigError

        raise ConfigError("selftest --gpu needs a CUDA device: use --dry-run on a CPU")
    try:
        os.makedirs(cfg.out_dir, exist_ok=True)
    except OSError as e:
        from profiler.errors import ConfigError

        raise ConfigError(f"cannot create --out {cfg.out_dir}: {e.strerror}") from None
    if not os.access(cfg.out_dir, os.W_OK):
        from profiler.errors import ConfigError

        raise ConfigError(f"--out {cfg.out_dir} is not writable: choose another folder")
    state: dict = {}
    steps, t_start = [], time.perf_counter()
    for name, fn in STEPS:
        log(f"selftest: {name}")
        t0 = time.perf_counter()
        try:
            entry = {"status": "ok", "reason": None, "data": fn(cfg, state)}
        except StepSkipped as e:
            entry = {"status": "skipped", "reason": str(e), "data": None}
        except Exception as e:  # a failed step is recorded; the others still run
            entry = {"status": "failed", "reason": f"{type(e).__name__}: {e}",
                     "data": {"traceback": traceback.format_exc()[-2000:]}}
        steps.append({"name": name, "duration_s": time.perf_counter() - t0, **entry})
    summary = {"dry_run": cfg.dry_run, "device": steps[0]["data"] if steps[0]["data"] else None,
               "torch": torch.__version__, "duration_s": time.perf_counter() - t_start,
               "ok": all(s["status"] != "failed" for s in steps), "steps": steps}
    Path(cfg.out_dir, "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    Path(cfg.out_dir, "summary.md").write_text(markdown(summary))
    return summary


def markdown(summary: dict) -> str:
    """The summary as a short markdown page: one row per step, then each step's figures."""
    device = summary.get("device") or {}
    lines = [f"# etameter selftest{' (dry run, CPU)' if summary['dry_run'] else ''}", "",
             f"- device: {device.get('name')} ({device.get('type')}), profile "
             f"{device.get('profile') or 'none'}"
             + (f": {device['profile_reason']}" if device.get("profile_reason") else ""),
             f"- torch {summary['torch']}; {summary['duration_s']:.0f} s; "
             f"{'all steps ok or skipped' if summary['ok'] else 'SOME STEPS FAILED'}", "",
             "| step | status | s | reason |", "| --- | --- | --- | --- |"]
    for s in summary["steps"]:
        reason = (s["reason"] or "").replace("|", "/").replace("\n", " ")[:160]
        lines.append(f"| {s['name']} | {s['status']} | {s['duration_s']:.1f} | {reason} |")
    for s in summary["steps"]:
        if s["status"] == "ok" and s["data"]:
            lines += ["", f"## {s['name']}", "", "```json",
                      json.dumps(s["data"], indent=1, default=str)[:4000], "```"]
    return "\n".join(lines) + "\n"
