"""Precision: the dtype of the weights, autocast, and TF32. Every variant has one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from harness.variants.base import Converter, gpu_reason, probe_reason


@dataclass(frozen=True)
class Precision:
    """What a precision token means: the precision the matmuls run in (a key of
    hardware_profiles' PRECISIONS), the weights' dtype and the autocast dtype."""

    compute: str
    weight_dtype: torch.dtype = torch.float32
    autocast_dtype: torch.dtype | None = None


TABLE = {
    "fp32": Precision("fp32"),
    "tf32": Precision("tf32"),
    "bf16-autocast": Precision("bf16", autocast_dtype=torch.bfloat16),
    "bf16": Precision("bf16", weight_dtype=torch.bfloat16),
    "fp16-autocast": Precision("fp16", autocast_dtype=torch.float16),
    "fp16": Precision("fp16", weight_dtype=torch.float16),
}


def default_precision(scenario: str, device_type: str) -> str:
    """The precision of a variant that names none: bf16-autocast for training and bf16 for
    inference on a GPU, fp32 on a CPU."""
    if device_type != "cuda":
        return "fp32"
    return "bf16-autocast" if scenario == "train" else "bf16"


class PrecisionConverter(Converter):
    """fp32, tf32, bf16-autocast, bf16 (weights), fp16-autocast, fp16 (weights, inference)."""

    kind = "precision"
    tokens = tuple(TABLE)
    compute_precisions = {token: p.compute for token, p in TABLE.items()}

    def resolve(self, choice, chosen, scenario, device_type):
        if choice is not None:
            return choice
        if any(c.converts_linears for c in chosen):  # fp8, quantization, sparsity
            if device_type == "cuda" and scenario == "train" and any(c.kind == "fp8" for c in chosen):
                # fp8 training on fp32 master weights under bf16 autocast, as the bf16-autocast
                # reference trains: the same optimizer state, so the ratio is fp8's alone.
                return "bf16-autocast"
            return "bf16" if device_type == "cuda" else "fp32"
        return default_precision(scenario, device_type)

    def skip_reason(self, variant, scenario, device):
        if variant.precision == "tf32" and gpu_reason("tf32", (8, 0), device):
            return gpu_reason("tf32", (8, 0), device)
        if variant.precision == "fp16" and scenario == "train":
            return "fp16 weights are an inference precision: use fp16-autocast for training"
        return None

    def probe(self, variant, scenario, device):
        if variant.autocast_dtype is None:
            return None
        return probe_reason(variant.precision, lambda: _autocast_probe(variant, device))

    def apply(self, model: nn.Module, variant, scenario, device) -> dict:
        if variant.weight_dtype != torch.float32:
            model.to(variant.weight_dtype)
        return {}

    def run_context(self, variant, device):
        if variant.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=variant.autocast_dtype)

    def global_settings(self, variant):
        return tf32_setting(variant.precision == "tf32")


@contextlib.contextmanager
def tf32_setting(allow: bool):
    """TF32 is process-wide: enable it for the tf32 variant only (disable it for every
    other), and restore it after."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _autocast_probe(variant, device: torch.device) -> None:
    with torch.autocast(device.type, dtype=variant.autocast_dtype):
        a = torch.randn(16, 16, device=device)
        (a @ a).sum()
