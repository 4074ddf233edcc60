"""The selftest's phases, in order of value. Every phase that runs a measurement runs it in a
child process (its own process group, killed on timeout: harness.selftest.children), with the
runs in the selftest's database, so the calibration stored early gives every later run its
``mfu_vs_ceiling``."""

from __future__ import annotations

import importlib.util
import shutil
import sys

from harness.selftest.children import etameter, run_child
from harness.selftest.core import Phase, PhaseContext, PhaseSkipped

#: The sweep of the longer phases (GPU); the CPU run takes CPU_SWEEP.
SWEEP = {
    "train": ("bf16-autocast", "fp32", "tf32", "fp16-autocast", "fp8-tensorwise", "fp8-rowwise",
              "2:4", "moe", "bf16-autocast+sdpa-math", "bf16-autocast+sdpa-flash",
              "bf16-autocast+sdpa-efficient", "bf16-autocast+sdpa-cudnn", "compile",
              "compile-max-autotune"),
    "prefill": ("bf16", "fp16", "fp8", "int8-weight-only", "int8-dynamic", "int4-weight-only",
                "2:4", "bf16+sdpa-math", "bf16+sdpa-flash", "bf16+sdpa-efficient", "compile"),
    "decode": ("bf16", "int8-weight-only", "int8-dynamic", "int4-weight-only", "bf16+compile"),
}
CPU_SWEEP = {"train": ("fp32", "fp32+moe-4-2"),
             "prefill": ("fp32", "fp32+sdpa-math", "int8-weight-only", "2:4")}
SWEEP_PRESET = "gpt2-124m"
#: fp8 against bf16 training, like with like: fp32 master weights and the same AdamW state
#: on both (bf16 autocast), compiled on both (torchao's float8 needs torch.compile to be fast).
FP8_PAIR = ("bf16-autocast+compile", "bf16-autocast+fp8-tensorwise+compile")
#: int8 against bf16 decode, eager (marked eager-only in the verdicts); batch 32 so that
#: int8-dynamic's int8 matmul runs (cuBLAS int8 needs M > 16 rows; decode's M is the batch).
DECODE_SET = ("bf16", "int8-weight-only", "int8-dynamic")


def _sizes(cfg) -> list[str]:
    """Bench options of the mode: short windows on the GPU, tiny fixed steps on the CPU."""
    if cfg.gpu:
        return ["--device", "cuda", "--trials", "2", "--warmup", "2"]
    return ["--device", "cpu", "--preset", "tiny", "--steps", "2", "--trials", "1",
            "--warmup", "0"]


def bench(ctx: PhaseContext, *args: str, gpu_args=(), cpu_args=()) -> dict:
    """``etameter bench --json`` in a child, within the phase's time; its document."""
    cfg = ctx.cfg
    argv = etameter("bench", "--json", "--db", cfg.db, *_sizes(cfg), *args,
                    *(gpu_args if cfg.gpu else cpu_args))
    result = run_child(argv, ctx.time_left_s(), ctx.on_child)
    doc = result.json()
    runs = doc.get("runs") or [doc]
    ctx.state.setdefault("runs", []).extend(runs)
    return doc


def figures(doc: dict) -> dict:
    """The figures a phase reports from a bench document (one run, or a sweep's runs and
    comparison rows with their verdicts)."""
    keys = ("variant", "status", "reason", "preset", "tokens_per_s", "mfu", "mfu_reason",
            "mfu_vs_ceiling", "ceiling_reason", "eta_flops_per_j", "avg_power_w",
            "energy_method", "flags", "quality_ok", "compile_time_s", "compile_count",
            "memory_estimate_bytes", "peak_memory_bytes", "seq_len_reason")
    if "runs" not in doc:
        return {k: doc.get(k) for k in keys}
    return {"runs": [{k: r.get(k) for k in keys} for r in doc["runs"]],
            "comparison": [{k: row.get(k) for k in ("variant", "speedup", "speedup_ci_low",
                                                    "speedup_ci_high", "verdict", "differences")}
                           for row in doc.get("comparison", [])]}


# -- the phases --------------------------------------------------------------------------------

def environment(ctx: PhaseContext) -> dict:
    import platform

    import torch

    cuda = torch.cuda.is_available()
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
           "cuda_available": cuda, "gpus": torch.cuda.device_count() if cuda else 0,
           "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
           "triton": importlib.util.find_spec("triton") is not None,
           "c_compiler": shutil.which("cc") or shutil.which("gcc"),
           "torchao": _version("torchao"), "sqlite_utils": _version("sqlite-utils"),
           "nvidia_ml_py": _version("nvidia-ml-py"), "executable": sys.executable}
    if ctx.cfg.gpu and not cuda:
        raise RuntimeError("torch sees no CUDA device")
    return out


def _version(distribution: str) -> str | None:
    """The installed version of a distribution, read from its metadata (no import)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def detect_and_meters(ctx: PhaseContext) -> dict:
    from hardware_profiles.device import resolve_device
    from profiler.meters.select import select_meter

    device = resolve_device(ctx.cfg.device)
    ctx.state["device"] = device.describe()
    choice = select_meter(device.meter_request())
    try:
        described = choice.meter.describe() if choice.meter else None
    finally:
        if choice.meter is not None:
            choice.meter.close()
    return {"device": device.describe(), "mig": getattr(device, "mig", None),
            "meter": described, "meters_tried": choice.tried, "meter_reason": choice.reason}


def idle_and_load(ctx: PhaseContext) -> dict:
    result = run_child([sys.executable, "-m", "harness.selftest.load"], ctx.time_left_s(),
                       ctx.on_child)
    return result.json()


def calibration(ctx: PhaseContext) -> dict:
    precisions = ["--precision", "bf16", "--precision", "fp8"] if ctx.cfg.gpu \
        else ["--precision", "fp32"]
    argv = etameter("calibrate", "--json", "--db", ctx.cfg.db, "--repeats", "3",
                    "--device", ctx.cfg.device, *precisions)
    doc = run_child(argv, ctx.time_left_s(), ctx.on_child).json()
    return {"stored_in": ctx.cfg.db, "ceilings": doc["ceilings"], "skipped": doc["skipped"]}


def llama_train(ctx: PhaseContext) -> dict:
    return figures(bench(ctx, gpu_args=("--preset", "llama-1b", "--window-s", "6"),
                         cpu_args=("--variants", "fp32")))


def fp8_vs_bf16(ctx: PhaseContext) -> dict:
    doc = bench(ctx, "--variants", ",".join(FP8_PAIR), "--preset", "llama-1b", "--window-s", "4")
    return {"like_with_like": "fp32 master weights, AdamW state and torch.compile on both",
            **figures(doc)}


def int8_vs_bf16_decode(ctx: PhaseContext) -> dict:
    doc = bench(ctx, "--scenario", "decode",
                gpu_args=("--preset", "llama-1b", "--batch", "32", "--window-s", "4",
                          "--variants", ",".join(DECODE_SET)),
                cpu_args=("--variants", "fp32,int8-weight-only,int8-dynamic"))
    return figures(doc)


def variant_probes(ctx: PhaseContext) -> dict:
    table = SWEEP if ctx.cfg.gpu else CPU_SWEEP
    argv = [sys.executable, "-m", "harness.selftest.probes", ctx.cfg.device,
            SWEEP_PRESET if ctx.cfg.gpu else "tiny",
            *(f"{s}:{v}" for s, vs in table.items() for v in vs)]
    return run_child(argv, ctx.time_left_s(), ctx.on_child).json()


def default_runs(ctx: PhaseContext) -> dict:
    out = {}
    for scenario in ("train", "prefill", "decode"):
        args = ["--scenario", scenario] + ([] if ctx.cfg.gpu else ["--variants", "fp32"])
        out[scenario] = figures(bench(ctx, *args, gpu_args=("--window-s", "6")))
    bad = {s: r["reason"] for s, r in out.items() if r["status"] != "ok"}
    if bad:
        raise RuntimeError(f"default runs not ok: {bad}")
    return out


def variant_sweep(ctx: PhaseContext) -> dict:
    table = SWEEP if ctx.cfg.gpu else CPU_SWEEP
    out = {s: figures(bench(ctx, "--scenario", s, "--variants", ",".join(vs),
                            gpu_args=("--preset", SWEEP_PRESET, "--window-s", "2",
                                      "--trials", "1")))
           for s, vs in table.items()}
    failed = [f"{s} {r['variant']}: {r['reason']}" for s, doc in out.items()
              for r in doc["runs"] if r["status"] not in ("ok", "skipped")]
    if failed:
        raise RuntimeError("variants neither ok nor skipped: " + "; ".join(failed))
    return out


def peak_memory(ctx: PhaseContext) -> dict:
    rows = [{"variant": r["variant"], "preset": r["preset"],
             "estimate_bytes": r.get("memory_estimate_bytes"),
             "peak_bytes": r.get("peak_memory_bytes"), "method": r.get("peak_memory_method"),
             "ratio": (r["peak_memory_bytes"] / r["memory_estimate_bytes"]
                       if r.get("peak_memory_bytes") and r.get("memory_estimate_bytes") else None)}
            for r in ctx.state.get("runs", []) if r.get("status") == "ok"]
    if not rows:
        raise PhaseSkipped("no run finished ok before this phase")
    return {"runs": rows}


def pytest_gpu(ctx: PhaseContext) -> dict:
    result = run_child([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs",
                        "-p", "no:cacheprovider", "tests/test_gpu.py"],
                       ctx.time_left_s(), ctx.on_child)
    tail = result.stdout[-3000:]
    if result.returncode != 0:
        raise RuntimeError(f"pytest -m gpu exited {result.returncode}: {tail}")
    return {"returncode": result.returncode, "tail": tail}


#: In order of value; estimates in seconds (GPU, CPU), each including its child's start-up.
PHASES = [
    Phase("environment", "torch/CUDA versions, capability, compiler present", 2, 6, environment),
    Phase("detect_and_meters", "device, profile match and evidence; meter chosen and tried",
          5, 3, detect_and_meters),
    Phase("idle_and_load", "idle power once settled, then NVML counter vs power integral on "
          "a 10 s bf16 matmul load, power against the enforced limit", 35, 0, idle_and_load,
          gpu_only=True),
    Phase("calibration", "bf16 and fp8 matmul ceilings and copy bandwidth, stored for "
          "mfu_vs_ceiling", 25, 10, calibration),
    Phase("llama_1b_train", "llama-1b bf16 training: MFU, MFU vs ceiling, eta", 60, 35,
          llama_train),
    Phase("fp8_vs_bf16_train", "llama-1b training, fp8 against bf16, both compiled with fp32 "
          "master weights", 150, 0, fp8_vs_bf16, gpu_only=True),
    Phase("int8_vs_bf16_decode", "llama-1b decode at batch 32, int8 weight-only and dynamic "
          "against bf16 (eager)", 75, 100, int8_vs_bf16_decode),
    Phase("variant_probes", "the capability probes of every sweep variant (probes only)",
          20, 15, variant_probes),
    Phase("default_runs", "train, prefill and decode with no sizes given", 120, 70, default_runs),
    Phase("variant_sweep", "every sweep variant on gpt2-124m: each ok or skipped", 720, 150,
          variant_sweep),
    Phase("peak_memory", "each run's memory estimate against its measured peak", 1, 1,
          peak_memory),
    Phase("pytest_gpu", "pytest -m gpu (tests/test_gpu.py)", 900, 0, pytest_gpu,
          gpu_only=True, test_suite=True),
]
