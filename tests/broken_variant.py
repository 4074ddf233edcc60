"""Test-only variants, loaded through ETAMETER_VARIANT_PLUGINS: one that quietly breaks the
model (the quality guard must flag it) and one that crashes (the sweep must go on). Each is a
converter of its own kind, registered like any plugin's."""

import torch
from torch import nn

from harness.variants import Converter, register


@register
class BrokenNoise(Converter):
    """``broken-noise``: adds noise to every nn.Linear weight."""

    kind = "broken-noise"
    tokens = ("broken-noise",)

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model: nn.Module, variant, scenario, device) -> dict:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.add_(torch.randn_like(m.weight) * 0.5)
        return {}


@register
class Crash(Converter):
    """``crash``: fails while converting the model."""

    kind = "crash"
    tokens = ("crash",)

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model: nn.Module, variant, scenario, device) -> dict:
        raise RuntimeError("this variant is broken on purpose")
