"""The attention kernel: scaled_dot_product_attention restricted to one SDPA backend."""

from __future__ import annotations

import contextlib

import torch

from harness.variants.base import Converter, probe_reason

#: Token -> the name of the torch.nn.attention.SDPBackend member.
BACKENDS = {"sdpa-math": "MATH", "sdpa-flash": "FLASH_ATTENTION",
            "sdpa-efficient": "EFFICIENT_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION"}


def attention_context(variant):
    """The sdpa_kernel context for the variant's attention kernel (or none)."""
    if variant.attention is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, BACKENDS[variant.attention]))


class AttentionConverter(Converter):
    """sdpa-math, sdpa-flash, sdpa-efficient, sdpa-cudnn. Probed by one causal call."""

    kind = "attention"
    tokens = tuple(BACKENDS)

    def skip_reason(self, variant, scenario, device):
        return None

    def probe(self, variant, scenario, device):
        return probe_reason(variant.attention, lambda: _attention_probe(variant, device))

    def apply(self, model, variant, scenario, device):
        return {}

    def run_context(self, variant, device):
        return attention_context(variant)


def _attention_probe(variant, device: torch.device) -> None:
    dtype = variant.autocast_dtype or variant.weight_dtype
    q = torch.randn(1, 2, 16, 64, device=device, dtype=dtype)
    with attention_context(variant):
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
