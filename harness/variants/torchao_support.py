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


PROBE_FEATURES = 256


def probe_linear(variant, device: torch.device) -> nn.Module:
    """A small Linear in the variant's weight dtype, for a trial conversion."""
    return nn.Sequential(nn.Linear(PROBE_FEATURES, PROBE_FEATURES, bias=False)).to(
        device, variant.weight_dtype)


def run_trial(model: nn.Module, variant, scenario: str, device: torch.device) -> None:
    """Run a converted probe model as the benchmark will: a (batch, tokens, features) input in
    the weights' dtype, under the variant's run context (autocast, kernel); forward under
    inference mode for inference, forward and backward in training. A conversion that
    succeeds but whose kernel rejects the input (fp8 rowwise in fp16, 2:4 with fp32 weights
    under autocast, int4 off sm80) fails here, not in the run."""
    from harness.variants.convert import run_context

    x = torch.randn(2, 32, PROBE_FEATURES, device=device, dtype=variant.weight_dtype)
    if scenario == "train":
        with run_context(variant, device):
            y = model(x)
        y.float().sum().backward()
    else:
        with torch.inference_mode(), run_context(variant, device):
            model(x)


def linear_names(model: nn.Module) -> list[str]:
    """The names of the model's nn.Linear layers."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def unconverted_linears(model: nn.Module, names: list[str]) -> list[str]:
    """Linear layers that are still plain nn.Linear with a plain weight after conversion."""
    modules = dict(model.named_modules())
    plain = (nn.Parameter, torch.Tensor)
    return [n for n in names if n in modules and type(modules[n]) is nn.Linear
            and type(modules[n].weight) in plain]
