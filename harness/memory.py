"""How much memory a run needs, before it allocates anything, and how much it used.

``estimate_memory(model_cfg, scenario, batch_size, seq_len, new_tokens, variant)`` returns a
:class:`MemoryEstimate`: bytes per part (weights, gradients, AdamW state, activations kept for
backward, attention scores, logits, KV cache, the quality guard's logits), summed. The
attention part depends on the path: the math kernel materialises ``B*H*T^2`` scores per layer
(kept for backward in training); fused kernels (flash, efficient, cuDNN) keep only a
``B*H*T`` log-sum-exp. ``fits(estimate, device)`` compares it with the free device memory
(``torch.cuda.mem_get_info``) or the CPU's available memory (``psutil``), and
``largest_batch`` finds the largest batch that would fit.

The estimate is a model of the allocations, not a measurement: the measured peak is stored
beside it (``peak_memory_bytes``, from :class:`PeakMemory`). tests/test_memory.py holds the
estimate within ``CPU_MARGIN`` of the measured CPU peak for the tiny and cpu-small presets.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field

import torch

#: Usable share of the free memory: the caching allocator fragments, and kernels need scratch.
HEADROOM = 0.9
#: Tests hold ``|measured - estimate| <= CPU_MARGIN[0] * estimate + CPU_MARGIN[1]`` on the CPU
#: (after a warm-up at a tiny size; the constant covers glibc's per-thread malloc arenas,
#: which add up to ~40 MiB of RSS at random under CPU contention).
CPU_MARGIN = (0.4, 64 * 2**20)

ATTENTION_PATHS = ("math", "fused")


def dtype_bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def attention_path(model_cfg, variant, device_type: str) -> str:
    """Which SDPA path the model's call takes: ``math`` (materialised scores) or ``fused``.

    ``sdpa-math`` is math. On CUDA, flash takes only fp16/bf16 and efficient does not take
    grouped-query attention (``enable_gqa``), so fp32/tf32 with GQA falls back to math. On
    the CPU, torch's fused CPU kernel takes fp32, bf16 and GQA.
    """
    if variant.attention == "sdpa-math":
        return "math"
    if device_type != "cuda":
        return "fused"
    half = (variant.autocast_dtype or variant.weight_dtype) in (torch.float16, torch.bfloat16)
    gqa = model_cfg.shape().kv_heads != model_cfg.n_heads
    return "fused" if half or not gqa else "math"


@dataclass
class MemoryEstimate:
    """Bytes a run will allocate, per part; ``total_bytes`` is their sum."""

    parts: dict[str, int]
    attention_path: str
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return int(sum(self.parts.values()))

    def to_dict(self) -> dict:
        return {"total_bytes": self.total_bytes, "parts_bytes": dict(self.parts),
                "attention_path": self.attention_path, "notes": list(self.notes)}


def parameter_count(model_cfg) -> int:
    """Distinct parameters of the model (a tied LM head once), counted on the meta device."""
    from harness.model import Transformer

    with torch.device("meta"):
        model = Transformer(model_cfg)
    return sum(p.numel() for p in model.parameters())


def estimate_memory(model_cfg, scenario: str, batch_size: int, seq_len: int,
                    new_tokens: int, variant, device_type: str = "cuda",
                    attention: str | None = None) -> MemoryEstimate:
    """The bytes a run of ``scenario`` allocates at its peak, per part.

    ``attention`` (``math`` or ``fused``) overrides the predicted path (for example with the
    backend the attention probe saw run).
    """
    from harness.quality import QUALITY_BATCH, QUALITY_SEQ

    shape = model_cfg.shape()
    n = parameter_count(model_cfg)
    w = dtype_bytes(variant.weight_dtype)
    a = dtype_bytes(variant.autocast_dtype or variant.weight_dtype)  # activations
    path = attention or attention_path(model_cfg, variant, device_type)
    b, t, d, f, L, v = batch_size, seq_len, model_cfg.d_model, shape.ffn_hidden, \
        model_cfg.n_layers, model_cfg.vocab_size
    h, g, q = shape.n_heads, shape.kv_heads, shape.q_head_dim
    qkv = (h + 2 * g) * q
    notes = [f"attention path: {path}"]
    # The reference is built in fp32 whatever the variant (converted afterwards).
    parts = {"weights": n * max(w, 4)}
    if scenario == "train":
        active_f = f * (model_cfg.moe_top_k if model_cfg.moe_experts else 1)
        mlp = (4 if model_cfg.family == "llama" else 2) * active_f
        per_token_layer = (6 * d + 2 * qkv + mlp) * a + 8  # + the norms' statistics
        parts["gradients"] = n * w
        parts["adamw_state"] = 2 * n * w
        if variant.autocast_dtype is not None:
            parts["autocast_weight_copies"] = n * a
            notes.append("autocast keeps a low-precision copy of each weight for backward")
        parts["activations"] = L * b * t * per_token_layer
        scores = b * h * t * t * a
        parts["attention"] = (L * scores + 2 * scores) if path == "math" else L * b * h * t * 4
        # logits, their fp32 copy for the loss, log-softmax saved for backward, the gradients
        parts["logits"] = b * t * v * (2 * a + 8 + (4 if a != 4 else 0))
    else:
        # Inference keeps nothing for backward: a few live activations, the scores of one layer.
        parts["activations"] = b * t * (2 * d + qkv + 2 * f) * a
        parts["attention"] = 2 * b * h * t * t * a if path == "math" else 0
        parts["logits"] = b * t * v * a * 2  # the prompt's logits and their argmax/slice
        if scenario == "decode":
            cache_len = t + new_tokens
            parts["kv_cache"] = 2 * L * b * g * q * cache_len * a
    qb, qt = min(batch_size, QUALITY_BATCH), min(seq_len, QUALITY_SEQ)
    parts["quality_logits"] = qb * qt * v * 4 * 3  # reference, bf16 spread, variant
    return MemoryEstimate(parts, path, notes)


def available_bytes(device: torch.device) -> tuple[int, str]:
    """Free memory on ``device`` now, and where the figure comes from."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), "torch.cuda.mem_get_info (free device memory)"
    import psutil

    return int(psutil.virtual_memory().available), "psutil.virtual_memory().available"


def largest_batch(fits_fn, batch_size: int) -> int:
    """The largest batch <= ``batch_size`` for which ``fits_fn(batch)`` holds (0 if none)."""
    lo, hi = 0, batch_size
    while lo < hi:  # fits_fn is monotone in the batch
        mid = (lo + hi + 1) // 2
        if fits_fn(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def memory_shortfall(model_cfg, scenario: str, batch_size: int, seq_len: int, new_tokens: int,
                     variant, device: torch.device, limit_bytes: int | None = None,
                     limit_source: str | None = None) -> tuple[MemoryEstimate, str | None]:
    """The estimate, and why the run would not fit (None if it fits): the estimate, the
    limit and the largest batch that fits."""
    if limit_bytes is None:
        limit_bytes, limit_source = available_bytes(device)
    usable = int(limit_bytes * HEADROOM)

    def estimate(batch: int) -> MemoryEstimate:
        return estimate_memory(model_cfg, scenario, batch, seq_len, new_tokens, variant,
                               device.type)

    est = estimate(batch_size)
    if est.total_bytes <= usable:
        return est, None
    best = largest_batch(lambda bb: estimate(bb).total_bytes <= usable, batch_size)
    biggest = max(est.parts, key=est.parts.get)
    return est, (f"needs about {est.total_bytes / 2**30:.1f} GiB (largest part: {biggest} "
                 f"{est.parts[biggest] / 2**30:.1f} GiB, attention path {est.attention_path}) "
                 f"but {usable / 2**30:.1f} GiB is usable ({HEADROOM:.0%} of "
                 f"{limit_bytes / 2**30:.1f} GiB from {limit_source}); "
                 + (f"the largest batch that fits is {best}: use --batch {best}" if best
                    else "not even batch 1 fits")
                 + _other_fixes(model_cfg, scenario, batch_size if best else 1, seq_len,
                                new_tokens, variant, device.type, usable))


def _other_fixes(model_cfg, scenario: str, batch: int, seq_len: int, new_tokens: int, variant,
                 device_type: str, usable: int) -> str:
    """The other ways to fit at ``batch``: fewer layers (a slice, ``--layers``) or a shorter
    sequence (``--seq``), each the largest that fits; empty when neither helps."""
    from dataclasses import replace

    def fits(cfg, seq: int) -> bool:
        return estimate_memory(cfg, scenario, batch, seq, new_tokens, variant,
                               device_type).total_bytes <= usable

    fixes = []
    layers = largest_batch(lambda n: fits(replace(model_cfg, n_layers=n), seq_len),
                           model_cfg.n_layers - 1)
    if layers:
        fixes.append(f"--layers {layers} (a slice of the model's {model_cfg.n_layers} layers)")
    seq = largest_batch(lambda t: fits(model_cfg, t), seq_len - 1)
    if seq:
        fixes.append(f"--seq {seq}")
    return (f"; or, keeping batch {batch}, " + " or ".join(fixes) + " fits") if fixes else ""


class PeakMemory:
    """The peak memory of a region: ``torch.cuda.max_memory_allocated`` on CUDA; on Linux the
    process's high-water RSS (``VmHWM``), reset at the start through ``/proc/self/clear_refs``,
    minus its RSS at the start; elsewhere ``ru_maxrss`` minus the start RSS (an upper bound:
    ``ru_maxrss`` keeps a higher earlier peak, even one from before ``exec``)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes: int | None = None
        self.method = "torch.cuda.max_memory_allocated"
        self._hwm = False

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the high-water mark to the current RSS
            self._hwm = _vm_hwm_bytes() is not None
        except OSError:
            self._hwm = False
        self.method = ("VmHWM (reset at the start) - rss at start" if self._hwm else
                       "ru_maxrss - rss at start (an upper bound: keeps earlier peaks)")
        self._base = psutil.Process().memory_info().rss
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device) - self._base)
        else:
            peak = _vm_hwm_bytes() if self._hwm else None
            if peak is None:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            self.peak_bytes = int(max(0, peak - self._base))
        return False


def _vm_hwm_bytes() -> int | None:
    """The process's high-water RSS from /proc/self/status, or None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None
