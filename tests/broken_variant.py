"""Test-only variants, loaded through ETAMETER_VARIANT_PLUGINS: one that quietly breaks the
model (the quality guard must flag it) and one that crashes (the sweep must go on)."""

import torch
from torch import nn

from harness.variants import CUSTOM


def _noise(model: nn.Module, variant) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.add_(torch.randn_like(m.weight) * 0.5)


def _crash(model: nn.Module, variant) -> None:
    raise RuntimeError("this variant is broken on purpose")


CUSTOM["broken-noise"] = _noise
CUSTOM["crash"] = _crash
