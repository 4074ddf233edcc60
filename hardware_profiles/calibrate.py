"""Measured ceilings of the current device: achievable matmul FLOP/s per precision and
memory bandwidth from a large copy.

Matmuls are square, on random data, rotating through several buffers so no result is cached,
and timed over several trials; the ceiling is the median trial. Sizes grow until one matmul
takes long enough to time well, so a CPU finishes in under a minute and a GPU is filled.

A ceiling is only as good as its trials agree: when their spread exceeds
``MAX_STABLE_SPREAD`` (another process competing for the device), the trials are run again,
up to ``MAX_ROUNDS`` rounds, and the steadiest round is kept; if none is steady the result is
marked ``noisy`` with the reason. The store keeps noisy ceilings for the record but never uses
one as the MFU ceiling (``Store.best_ceiling``).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from profiler.errors import ConfigError
from profiler.progress import ProgressFn, no_progress

#: Per device type: start size, largest size, shortest single op and trial (s).
SIZING = {
    "cpu": dict(n_start=256, n_max=4096, min_op_s=0.05, min_trial_s=0.25,
                copy_bytes=256 * 2**20),
    "cuda": dict(n_start=1024, n_max=16384, min_op_s=0.002, min_trial_s=0.2,
                 copy_bytes=2 * 2**30),
}
N_BUFFERS = 3
#: The largest (max - min) / median of a ceiling's trials that counts as steady.
MAX_STABLE_SPREAD = 0.15
#: Rounds of trials before a ceiling that stays unsteady is marked noisy.
MAX_ROUNDS = 3
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
          "fp16": torch.float16, "fp8": torch.float8_e4m3fn}


@dataclass(frozen=True)
class CalibrationConfig:
    precisions: tuple[str, ...] | None = None  # None: every precision the device runs
    repeats: int = 5
    n_max: int | None = None  # cap the matmul size (tests use small sizes)
    copy_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.repeats <= 0:
            raise ConfigError(f"repeats must be positive, got {self.repeats}")
        unknown = set(self.precisions or ()) - set(DTYPES)
        if unknown:
            raise ConfigError(f"unknown precision(s) {sorted(unknown)}: choose from {tuple(DTYPES)}")


def supported_precisions(device: torch.device) -> tuple[list[str], dict[str, str]]:
    """Precisions this device can run a matmul in, and why the others are skipped."""
    if device.type == "cpu":
        return ["fp32", "bf16"], {"tf32": "TF32 is a GPU tensor-core format",
                                   "fp16": "fp16 matmuls on a CPU are not a compute path worth a ceiling",
                                   "fp8": "fp8 matmuls need an NVIDIA GPU (compute capability 8.9 or newer)"}
    major, minor = torch.cuda.get_device_capability(device)
    ok, skipped = ["fp32", "tf32", "fp16"], {}
    if torch.cuda.is_bf16_supported():
        ok.append("bf16")
    else:
        skipped["bf16"] = "this GPU has no bf16 support"
    if (major, minor) >= (8, 9) and hasattr(torch, "_scaled_mm"):
        ok.append("fp8")
    else:
        skipped["fp8"] = "fp8 needs compute capability 8.9 or newer"
    return ok, skipped


def _operands(precision: str, n: int, device: torch.device):
    """N_BUFFERS (a, b) pairs and the matmul to run on one pair."""
    gen = torch.Generator(device=device).manual_seed(0)
    if precision == "fp8":
        pairs = [(torch.randn(n, n, device=device, generator=gen).to(torch.float8_e4m3fn),
                  torch.randn(n, n, device=device, generator=gen).to(torch.float8_e4m3fn).t())
                 for _ in range(N_BUFFERS)]
        one = torch.ones((), device=device)

        def op(a, b):
            return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        return pairs, op
    dtype = DTYPES[precision]
    pairs = [(torch.randn(n, n, device=device, dtype=dtype, generator=gen),
              torch.randn(n, n, device=device, dtype=dtype, generator=gen))
             for _ in range(N_BUFFERS)]
    return pairs, torch.matmul


class _Tf32:
    """Allow TF32 for the tf32 ceiling only; fp32 is measured in full precision."""

    def __init__(self, enable: bool):
        self.enable = enable

    def __enter__(self):
        self.saved = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.enable

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32 = self.saved


def _timed(fn: Callable[[], None], sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _steady(trial: Callable[[], float], repeats: int, what: str, progress: ProgressFn) -> dict:
    """Rounds of ``repeats`` trials until one is steady (spread at most MAX_STABLE_SPREAD),
    at most MAX_ROUNDS: the median, spread and trials of the steadiest round, its flag and
    reason, and the spread of every round."""
    rounds = []
    for k in range(MAX_ROUNDS):
        rates = []
        for i in range(repeats):
            rates.append(trial())
            progress(what, k * repeats + i + 1, (k + 1) * repeats)
        median = statistics.median(rates)
        rounds.append(((max(rates) - min(rates)) / median, median, rates))
        if rounds[-1][0] <= MAX_STABLE_SPREAD:
            break
    spread, median, rates = min(rounds, key=lambda r: r[0])
    noisy = spread > MAX_STABLE_SPREAD
    return {"value": median, "spread": spread, "trials": rates, "noisy": noisy,
            "round_spreads": [r[0] for r in rounds],
            "noise_reason": (f"the trials spread {spread:.0%} (more than {MAX_STABLE_SPREAD:.0%}) "
                             f"in each of {len(rounds)} rounds: something else is using the "
                             "device; stored for the record, never used as the MFU ceiling; "
                             "calibrate again on an idle machine") if noisy else None}


def matmul_ceiling(precision: str, device: torch.device, sync: Callable[[], None],
                   repeats: int, n_max: int | None = None,
                   progress: ProgressFn = no_progress) -> dict:
    """Median FLOP/s of square matmuls in ``precision``, with the size and the spread, from
    the steadiest of up to MAX_ROUNDS rounds of trials (``noisy`` if none is steady)."""
    sizing = SIZING[device.type]
    n_cap = min(n_max or sizing["n_max"], sizing["n_max"])
    n = min(sizing["n_start"], n_cap)
    with _Tf32(precision == "tf32") if device.type == "cuda" else contextlib.nullcontext():
        while True:
            pairs, op = _operands(precision, n, device)
            op(*pairs[0])  # warm-up: kernel selection, page faults
            op_s = _timed(lambda: op(*pairs[0]), sync)
            if op_s >= sizing["min_op_s"] or n * 2 > n_cap:
                break
            n *= 2
        per_trial = max(1, math.ceil(sizing["min_trial_s"] / max(op_s, 1e-9)))
        flops = 2.0 * n ** 3 * per_trial
        steady = _steady(lambda: flops / _timed(
            lambda: [op(*pairs[i % N_BUFFERS]) for i in range(per_trial)], sync),
            repeats, f"matmul {precision}", progress)
    return {"kind": "matmul", "precision": precision, "unit": "flop_per_s",
            "size": n, "ops_per_trial": per_trial, "repeats": repeats, **steady}


def copy_bandwidth(device: torch.device, sync: Callable[[], None], repeats: int,
                   size_bytes: int | None = None, progress: ProgressFn = no_progress) -> dict:
    """Median bytes/s of a device-to-device copy (each byte read once and written once)."""
    size = size_bytes or SIZING[device.type]["copy_bytes"]
    n = size // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: touch every page
    steady = _steady(lambda: 2 * n * 4 / _timed(lambda: dst.copy_(src), sync), repeats,
                     "copy bandwidth", progress)
    return {"kind": "copy", "precision": None, "unit": "byte_per_s",
            "size": n * 4, "ops_per_trial": 1, "repeats": repeats, **steady}


def calibrate(device: torch.device, sync: Callable[[], None], cfg: CalibrationConfig,
              progress: ProgressFn = no_progress) -> dict:
    """Every ceiling for the device: matmul per precision, then the copy bandwidth;
    ``progress(what, trials done, trials planned)`` after each trial."""
    available, skipped = supported_precisions(device)
    wanted = list(cfg.precisions or available)
    results, skipped_out = [], {}
    for precision in wanted:
        if precision not in available:
            skipped_out[precision] = skipped.get(precision, f"{precision} is not supported here")
            continue
        progress(f"matmul {precision}", 0, cfg.repeats)
        results.append(matmul_ceiling(precision, device, sync, cfg.repeats, cfg.n_max, progress))
    progress("copy bandwidth", 0, cfg.repeats)
    results.append(copy_bandwidth(device, sync, cfg.repeats, cfg.copy_bytes, progress))
    return {"results": results, "skipped": skipped_out}


def compare_with_datasheet(ctx, results: list[dict]) -> list[dict]:
    """Each ceiling of ``calibrate(...)["results"]`` against the device's published figures
    (``ctx`` a DeviceContext): a matmul against the vendor's dense peak at its precision
    (``vendor_peak_flops_per_s``, ``fraction_of_vendor_peak`` or None, ``vendor_peak_source``),
    the copy bandwidth against the profile's datasheet memory bandwidth where it has one.
    The dicts are updated in place and returned. ``peak_kind`` says what the peak is: a
    GPU's "vendor" datasheet figure, or a CPU's "assumed" one (cores x clock x FLOPs per
    cycle, no vendor publishes it)."""
    for r in results:
        if r["kind"] == "matmul":
            r["peak_kind"] = "vendor" if ctx.type == "cuda" else "assumed"
            peak = ctx.peak(r["precision"])
            r["vendor_peak_flops_per_s"] = peak.flops_per_s
            r["fraction_of_vendor_peak"] = (r["value"] / peak.flops_per_s
                                            if peak.flops_per_s else None)
            r["vendor_peak_source"] = peak.source
        elif getattr(ctx.profile, "memory_bandwidth_gb_per_s", None):
            datasheet = ctx.profile.memory_bandwidth_gb_per_s * 1e9
            r["datasheet_bytes_per_s"] = datasheet
            r["fraction_of_datasheet"] = r["value"] / datasheet
    return results
