"""Which matmul kernels a converted model actually runs at the timed shape.

A variant can convert every layer and still not run its kernel: torchao's ``safe_int_mm``
falls back to a float32 matmul when ``torch._int_mm`` refuses the shape (cuBLAS int8 needs
more than 16 rows, and decode's rows are the batch), and the run would be reported ``ok`` as
int8. Before timing, one forward at the timed shape runs under the profiler; each converter
that declares a kernel (``Converter.kernel_reason``) says from the operator counts whether
it ran, and a variant whose kernel did not run is skipped with the reason.
"""

from __future__ import annotations

from collections import Counter

import torch

#: Operators of a float (or int32) matmul, as the profiler names them.
FLOAT_MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


def op_counts(fn) -> Counter:
    """How many times each operator ran during ``fn()`` (the profiler's CPU-side events:
    operators called inside tensor subclasses and fallbacks included)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return Counter({e.key: e.count for e in prof.key_averages()})


def timed_input(scenario) -> torch.Tensor:
    """Tokens of the shape a timed step feeds each linear layer: one new token per sequence
    in decode (M = batch), the whole batch x sequence otherwise."""
    length = 1 if scenario.name == "decode" else scenario.seq_len
    return scenario.tokens(scenario.batch_size, length, stream=998)


def kernel_fallback(model, variant, scenario, info: dict) -> str | None:
    """Why the converted ``model`` does not run the variant's kernel at the timed shape, or
    None. Costs one forward only for variants that declare a kernel."""
    from harness.variants.convert import converters_of

    checks = [c for c in converters_of(variant) if c.declares_kernel(variant)]
    if not checks:
        return None
    tokens = timed_input(scenario)

    def forward():
        with torch.inference_mode(), scenario.context():
            model(tokens)

    counts = op_counts(forward)
    converted = info.get("converted_layers") or 0
    unconverted = len(info.get("unconverted_layers") or [])
    info["kernel_check"] = {"rows": tokens.numel(), "ops": {
        k: v for k, v in counts.items() if "mm" in k or "matmul" in k}}
    for conv in checks:
        reason = conv.kernel_reason(variant, counts, converted, unconverted, tokens.numel())
        if reason:
            return reason
    return None
