"""What ``etameter presets`` lists: every preset and shipped open-model shape with its
parameters, logical FLOPs per token, and the memory a training step and a decode step need at
its default sizes (estimated, :mod:`harness.memory`), with its source and differences."""

from __future__ import annotations

from harness.memory import estimate_memory, parameter_count
from harness.model_files import ModelSpec
from harness.variants import parse_variant
from profiler.flops import logical_flops

#: The precisions the memory figures assume: the GPU defaults (the shapes are GPU-sized).
TRAIN_VARIANT, DECODE_VARIANT = "bf16-autocast", "bf16"
DECODE_NEW_TOKENS = 16


def describe(spec: ModelSpec) -> dict:
    """One catalog row (a JSON-able dict) for ``spec``."""
    shape = spec.model.shape()
    train = logical_flops(shape, "train", batch_size=spec.batch_size, seq_len=spec.seq_len)
    context = max(1, min(spec.seq_len, spec.model.max_seq_len - DECODE_NEW_TOKENS))
    memory = {}
    for scenario, token, seq in (("train", TRAIN_VARIANT, spec.seq_len),
                                 ("decode", DECODE_VARIANT, context)):
        variant = parse_variant(token, scenario, "cuda")
        est = estimate_memory(spec.model, scenario, spec.batch_size, seq, DECODE_NEW_TOKENS,
                              variant, "cuda")
        memory[scenario] = {"bytes": est.total_bytes, "precision": token, "batch_size":
                            spec.batch_size, "seq_len": seq, "estimated": True,
                            "parts_bytes": est.parts}
    return {"name": spec.name, "description": spec.description, "source": spec.source,
            "batch_size": spec.batch_size, "seq_len": spec.seq_len,
            "parameters": parameter_count(spec.model),
            "matmul_parameters_active": train.n_mm_active,
            "logical_flops_per_token_train": train.flops_per_token,
            "memory": memory, "differences": list(spec.differences),
            "model": spec.model.to_dict()}


def catalog(specs) -> list[dict]:
    """Catalog rows for ``specs`` (e.g. ``harness.presets.PRESETS.values()``)."""
    return [describe(s) for s in specs]
