"""What the torchao converters (fp8, quantization, sparsity) share: the one check that
torchao is installed, the probe layer, and the report of layers left unconverted."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from harness.variants.base import Converter

TORCHAO_HINT = "torchao is not installed: pip install 'etameter[variants]'"


def has_torchao() -> bool:
    """True if torchao can be imported (only called when a variant is checked)."""
    try:
        importlib.import_module("torchao")
    except ImportError:
        return False
    return True


class TorchaoConverter(Converter):
    """A converter that replaces nn.Linear layers with torchao's. Its probe first checks
    that torchao is installed; subclasses run their trial after ``super().probe``."""

    converts_linears = True

    def probe(self, variant, scenario, device):
        return None if has_torchao() else TORCHAO_HINT


def probe_linear(variant, device: torch.device) -> nn.Module:
    """A small Linear in the variant's weight dtype, for a trial conversion."""
    return nn.Sequential(nn.Linear(256, 256, bias=False)).to(device, variant.weight_dtype)


def linear_names(model: nn.Module) -> list[str]:
    """The names of the model's nn.Linear layers."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def unconverted_linears(model: nn.Module, names: list[str]) -> list[str]:
    """Linear layers that are still plain nn.Linear with a plain weight after conversion."""
    modules = dict(model.named_modules())
    plain = (nn.Parameter, torch.Tensor)
    return [n for n in names if n in modules and type(modules[n]) is nn.Linear
            and type(modules[n].weight) in plain]
