"""fp8 through torchao: tensorwise or rowwise scaling for training, dynamic activation and
weight quantization (per row) for inference."""

from __future__ import annotations

from torch import nn

from harness.variants.base import gpu_reason, probe_reason
from harness.variants.torchao_support import TorchaoConverter, probe_linear, run_trial

#: Token -> recipe; ``fp8`` alone is tensorwise in training and dynamic in inference.
RECIPES = {"fp8-tensorwise": "tensorwise", "fp8-rowwise": "rowwise"}
TOKENS = {"tensorwise": "fp8-tensorwise", "rowwise": "fp8-rowwise", "dynamic": "fp8"}


class Fp8Converter(TorchaoConverter):
    """fp8, fp8-tensorwise, fp8-rowwise. The choice is the recipe: tensorwise, rowwise
    (training) or dynamic (inference)."""

    kind = "fp8"
    tokens = ("fp8", "fp8-tensorwise", "fp8-rowwise")
    compute_precisions = dict.fromkeys(tokens, "fp8")

    def parse(self, token, scenario, device_type):
        if token not in self.tokens:
            return None
        return RECIPES.get(token, "tensorwise" if scenario == "train" else "dynamic")

    def token(self, choice):
        return TOKENS[choice]

    def skip_reason(self, variant, scenario, device):
        recipe, training = variant.fp8, scenario == "train"
        if recipe == "dynamic" and training:
            return "fp8 dynamic quantization is an inference variant"
        if recipe != "dynamic" and not training:
            return f"fp8-{recipe} is a training recipe: use fp8 for inference"
        return gpu_reason("fp8", (8, 9), device)

    def probe(self, variant, scenario, device):
        """Convert a small layer with the run's recipe and run it in the run's precision:
        the conversion alone passes where the kernel then refuses (rowwise fp8 scales are
        bf16-only, so fp16 + fp8-rowwise fails at the first matmul)."""
        return super().probe(variant, scenario, device) or probe_reason(
            TOKENS[variant.fp8], lambda: _trial(variant, scenario, device))

    def apply(self, model, variant, scenario, device):
        if variant.fp8 == "dynamic":
            _float8_inference(model)
        else:
            _float8_training(model, variant.fp8)
        return {}


def _trial(variant, scenario, device) -> None:
    model = probe_linear(variant, device)
    if variant.fp8 == "dynamic":
        _float8_inference(model)
    else:
        _float8_training(model, variant.fp8)
    run_trial(model, variant, scenario, device)


def fp8_filter(module: nn.Module, fqn: str) -> bool:
    """fp8 layers need dims divisible by 16; the LM head stays in high precision (as in
    torchtitan), since its logits are the most precision-sensitive matmul."""
    return (isinstance(module, nn.Linear) and fqn != "lm_head"
            and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def _float8_training(model: nn.Module, recipe: str) -> None:
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name(recipe),
                               module_filter_fn=fp8_filter)


def _float8_inference(model: nn.Module) -> None:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
              filter_fn=fp8_filter)
