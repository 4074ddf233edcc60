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
        if choice is not None:
            experts, top_k = choice
            if experts < 2 or not 1 <= top_k <= experts:
                why = "top-k cannot exceed the number of experts; " if top_k > experts else ""
                raise ConfigError(f"moe-{experts}-{top_k}: {why}moe-E-K needs E >= 2 experts "
                                  "and 1 <= K <= E (e.g. moe-8-2)")
        return choice

    def token(self, choice):
        return f"moe-{choice[0]}-{choice[1]}"

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model, variant, scenario, device):
        impl, reason = set_moe_impl(model, variant, device, scenario)
        return {"moe_impl": impl, "moe_impl_reason": reason}

    def model_config(self, model_cfg, variant):
        experts, top_k = variant.moe
        return replace(model_cfg, moe_experts=experts, moe_top_k=top_k)


#: Tokens per expert in the probe: uneven, one expert empty, none a multiple of 16, as top-k
#: routing gives them (aligned offsets pass where real routing then fails).
PROBE_GROUP_SIZES = (5, 0, 37, 19)
PROBE_DIM, PROBE_HIDDEN = 64, 128


def grouped_mm_trial(device: torch.device, dtype: torch.dtype, training: bool,
                     sizes: tuple[int, ...] = PROBE_GROUP_SIZES) -> None:
    """The experts' grouped matmuls as ``harness.model.MoeMlp`` calls them (tokens x d times
    E x d x hidden, int32 cumulative offsets), with backward in training."""
    counts = torch.tensor(sizes, device=device)
    offs = torch.cumsum(counts, 0).to(torch.int32)
    x = torch.randn(int(counts.sum()), PROBE_DIM, device=device, dtype=dtype, requires_grad=training)
    w_up = torch.randn(len(sizes), PROBE_DIM, PROBE_HIDDEN, device=device, dtype=dtype,
                       requires_grad=training)
    w_down = torch.randn(len(sizes), PROBE_HIDDEN, PROBE_DIM, device=device, dtype=dtype,
                         requires_grad=training)
    y = torch._grouped_mm(torch._grouped_mm(x, w_up, offs=offs), w_down, offs=offs)
    if training:
        y.float().sum().backward()


def set_moe_impl(model: nn.Module, variant, device: torch.device,
                 scenario: str = "prefill") -> tuple[str | None, str | None]:
    """Grouped matmul for the experts where the device runs it with real routing's uneven
    groups, else the per-expert loop; returns the implementation and why (None: no MoE)."""
    from harness.model import MoeMlp

    layers = [m for m in model.modules() if isinstance(m, MoeMlp)]
    if not layers:
        return None, None
    dtype = variant.autocast_dtype or variant.weight_dtype
    if device.type != "cuda" or not hasattr(torch, "_grouped_mm"):
        impl, reason = "loop", "torch._grouped_mm runs on CUDA only"
    else:
        failure = run_probe(lambda: grouped_mm_trial(device, dtype, scenario == "train"))
        impl = "loop" if failure else "grouped"
        reason = (f"torch._grouped_mm failed on uneven groups {PROBE_GROUP_SIZES}: {failure}"
                  if failure else "torch._grouped_mm ran uneven groups in the probe")
    for m in layers:
        m.impl, m.grouped_dtype = impl, dtype
    return impl, reason
