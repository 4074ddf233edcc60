"""The attention kernel: scaled_dot_product_attention restricted to one SDPA backend.

The probe makes the model's own calls (``harness.model.Attention``): its heads and key/value
heads with ``enable_gqa`` as the model passes it, its head dim and dtype, a causal call (train
and prefill, backward too in training) and, in decode, one new token against the cache with
a boolean mask. On CUDA the efficient kernel takes no GQA and flash no explicit mask, so a
probe with equal heads and no mask would pass where the run fails.

``sdpa_backends`` records which backend each of the model's calls runs with: the variant's
kernel, or without one the first backend in torch's priority order that accepts the call
(what the dispatcher picks), so a silent fall-back to math shows in the run's info.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from harness.variants.base import Converter, run_probe

#: Token -> the name of the torch.nn.attention.SDPBackend member.
BACKENDS = {"sdpa-math": "MATH", "sdpa-flash": "FLASH_ATTENTION",
            "sdpa-efficient": "EFFICIENT_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION"}
NAMES = {v: k.removeprefix("sdpa-") for k, v in BACKENDS.items()}
PROBE_TOKENS = 64  # the probe's sequence (and decode cache) length


def attention_context(variant):
    """The sdpa_kernel context for the variant's attention kernel (or none)."""
    if variant.attention is None:
        return contextlib.nullcontext()
    return _kernel(BACKENDS[variant.attention])


def _kernel(member: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(getattr(SDPBackend, member))


def _probe_config():
    """A small llama-style config (GQA) for a probe without the run's model config."""
    from harness.model import ModelConfig

    return ModelConfig(family="llama", n_layers=1, d_model=256, n_heads=4, n_kv_heads=2,
                       ffn_hidden=512, vocab_size=256, max_seq_len=PROBE_TOKENS)


def model_calls(model_cfg, variant, scenario: str, device: torch.device) -> dict:
    """The SDPA calls the model makes in ``scenario``: key -> (description, a function
    running one)."""
    shape = model_cfg.shape()
    h, g, q = shape.n_heads, shape.kv_heads, shape.q_head_dim
    gqa = g != h  # exactly as harness.model.Attention passes it
    t = min(PROBE_TOKENS, model_cfg.max_seq_len)
    dtype = variant.autocast_dtype or variant.weight_dtype
    train = scenario == "train"

    def rand(heads: int, length: int) -> torch.Tensor:
        return torch.randn(1, heads, length, q, device=device, dtype=dtype, requires_grad=train)

    def causal():
        y = F.scaled_dot_product_attention(rand(h, t), rand(g, t), rand(g, t), is_causal=True,
                                           enable_gqa=gqa)
        if train:
            y.float().sum().backward()

    def decode():
        visible = (torch.arange(t, device=device) <= t // 2).view(1, -1)
        F.scaled_dot_product_attention(rand(h, 1), rand(g, t), rand(g, t), attn_mask=visible,
                                       enable_gqa=gqa)

    what = (f"{'GQA %d:%d' % (h, g) if gqa else '%d heads' % h}, "
            f"{str(dtype).removeprefix('torch.')}, head dim {q}")
    calls = {"causal": (f"causal call ({what})", causal)}
    if scenario == "decode":
        calls["decode_step"] = (f"decode-step call (one token, bool mask, {what})", decode)
    return calls


def priority_order() -> list[str]:
    """SDPBackend member names in the order torch's dispatcher tries them."""
    from torch.nn.attention import SDPBackend

    try:
        order = [SDPBackend(i).name for i in torch._C._get_sdp_priority_order()]
    except Exception:  # a private API: fall back to torch's documented default order
        order = ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH", "CUDNN_ATTENTION"]
    return [m for m in order if m in NAMES]


def sdpa_backends(model_cfg, variant, scenario: str, device: torch.device) -> dict:
    """Which backend each of the model's SDPA calls runs with (None: none accepts it)."""
    result = {}
    for key, (_, call) in model_calls(model_cfg, variant, scenario, device).items():
        members = [BACKENDS[variant.attention]] if variant.attention else priority_order()
        result[key] = next((NAMES[m] for m in members
                              if run_probe(lambda m=m: _in_kernel(m, call)) is None), None)
    return result


def _in_kernel(member: str, call) -> None:
    with _kernel(member):
        call()


class AttentionConverter(Converter):
    """sdpa-math, sdpa-flash, sdpa-efficient, sdpa-cudnn. Probed with the model's calls."""

    kind = "attention"
    tokens = tuple(BACKENDS)

    def skip_reason(self, variant, scenario, device):
        return None

    def probe(self, variant, scenario, device):
        return self.probe_model(variant, scenario, device, None)

    def probe_model(self, variant, scenario, device, model_cfg=None):
        model_cfg = model_cfg or _probe_config()
        member = BACKENDS[variant.attention]
        for label, call in model_calls(model_cfg, variant, scenario, device).values():
            reason = run_probe(lambda: _in_kernel(member, call))
            if reason:
                return f"{variant.attention} cannot run here: the model's {label}: {reason}"
        return None

    def apply(self, model, variant, scenario, device):
        return {}

    def run_context(self, variant, device):
        return attention_context(variant)
