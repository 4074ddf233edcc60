"""MoE: every MLP becomes E routed experts of the same width with top-K routing. It is a
different model (credited with its own logical FLOPs by active parameters)."""

from __future__ import annotations

import re
from dataclasses import replace

import torch
from torch import nn

from harness.variants.base import Converter, run_probe
from profiler.errors import ConfigError

MOE_RE = re.compile(r"^moe(?:-(\d+)-(\d+))?$")
DEFAULT = (8, 2)


class MoeConverter(Converter):
    """moe (8 experts, top-2) or moe-E-K. The choice is the (experts, top-k) pair."""

    kind = "moe"
    tokens = ("moe", "moe-E-K")

    def parse(self, token, scenario, device_type):
        m = MOE_RE.match(token)
        if m is None:
            return None
        return (int(m.group(1)), int(m.group(2))) if m.group(1) else DEFAULT

    def resolve(self, choice, chosen, scenario, device_type):
        if choice is not None and choice[1] > choice[0]:
            raise ConfigError(f"moe-{choice[0]}-{choice[1]}: top-k cannot exceed the number "
                              "of experts")
        return choice

    def token(self, choice):
        return f"moe-{choice[0]}-{choice[1]}"

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model, variant, scenario, device):
        return {"moe_impl": set_moe_impl(model, variant, device)}

    def model_config(self, model_cfg, variant):
        experts, top_k = variant.moe
        return replace(model_cfg, moe_experts=experts, moe_top_k=top_k)


def set_moe_impl(model: nn.Module, variant, device: torch.device) -> str | None:
    """Grouped matmul for the experts where the device runs it, else the per-expert loop."""
    from harness.model import MoeMlp

    layers = [m for m in model.modules() if isinstance(m, MoeMlp)]
    if not layers:
        return None
    dtype = variant.autocast_dtype or variant.weight_dtype
    impl = "loop"
    if device.type == "cuda" and hasattr(torch, "_grouped_mm"):
        def trial():
            a = torch.randn(64, 64, device=device, dtype=dtype)
            b = torch.randn(2, 64, 64, device=device, dtype=dtype)
            torch._grouped_mm(a, b, offs=torch.tensor([32, 64], device=device, dtype=torch.int32))
        if run_probe(trial) is None:
            impl = "grouped"
    for m in layers:
        m.impl, m.grouped_dtype = impl, dtype
    return impl
