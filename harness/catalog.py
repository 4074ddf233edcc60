"""What ``etameter presets`` lists: every preset and shipped open-model shape with its
parameters, logical FLOPs per token, and the memory a training step and a decode step need at
its default sizes (estimated, :mod:`harness.memory`), with its source and differences."""

from __future__ import annotations

from harness.memory import estimate_memory, parameter_count
from harness.model_files import ModelSpec
from harness.variants import parse_variant
from harness.variants.precision import default_precision
from profiler.flops import logical_flops

DECODE_NEW_TOKENS = 16


def describe(spec: ModelSpec, device_type: str = "cuda") -> dict:
    """One catalog row (a JSON-able dict) for ``spec``; its memory figures assume the
    precisions a run on ``device_type`` takes by default (bf16 on a GPU, fp32 on a CPU)."""
    shape = spec.model.shape()
    train = logical_flops(shape, "train", batch_size=spec.batch_size, seq_len=spec.seq_len)
    context = max(1, min(spec.seq_len, spec.model.max_seq_len - DECODE_NEW_TOKENS))
    memory = {}
    for scenario, seq in (("train", spec.seq_len), ("decode", context)):
        token = default_precision(scenario, device_type)
        variant = parse_variant(token, scenario, device_type)
        est = estimate_memory(spec.model, scenario, spec.batch_size, seq, DECODE_NEW_TOKENS,
                              variant, device_type)
        memory[scenario] = {"bytes": est.total_bytes, "precision": token,
                            "device_type": device_type, "batch_size":
                            spec.batch_size, "seq_len": seq, "estimated": True,
                            "parts_bytes": est.parts}
    return {"name": spec.name, "description": spec.description, "source": spec.source,
            "batch_size": spec.batch_size, "seq_len": spec.seq_len,
            "parameters": parameter_count(spec.model),
            "matmul_parameters_active": train.n_mm_active,
            "logical_flops_per_token_train": train.flops_per_token,
            "memory": memory, "differences": list(spec.differences),
            "model": spec.model.to_dict()}


def catalog(specs, device_type: str = "cuda") -> list[dict]:
    """Catalog rows for ``specs`` (e.g. ``harness.presets.PRESETS.values()``), memory at the
    default precisions of ``device_type``."""
    return [describe(s, device_type) for s in specs]
