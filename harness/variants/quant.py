"""Weight quantization through torchao (inference): int8 weight-only, int8 dynamic
activation and weight, int4 weight-only."""

from __future__ import annotations

from torch import nn

from harness.variants.base import probe_reason
from harness.variants.torchao_support import TorchaoConverter, probe_linear


class QuantConverter(TorchaoConverter):
    """int8-weight-only, int8-dynamic (its matmuls run in int8), int4-weight-only."""

    kind = "quant"
    tokens = ("int8-weight-only", "int8-dynamic", "int4-weight-only")
    compute_precisions = {"int8-dynamic": "int8"}

    def skip_reason(self, variant, scenario, device):
        if scenario == "train":
            return f"{variant.quant} is an inference variant: the train scenario cannot run it"
        return None

    def probe(self, variant, scenario, device):
        return super().probe(variant, scenario, device) or probe_reason(
            variant.quant, lambda: quantize(probe_linear(variant, device), variant.quant))

    def apply(self, model, variant, scenario, device):
        quantize(model, variant.quant)
        return {}


def quantize(model: nn.Module, token: str) -> None:
    """Quantize the model's Linear layers in place with torchao's ``quantize_``."""
    from torchao.quantization import (Int4WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig, quantize_)

    config = {"int8-weight-only": lambda: Int8WeightOnlyConfig(),
              "int8-dynamic": lambda: Int8DynamicActivationInt8WeightConfig(),
              "int4-weight-only": lambda: Int4WeightOnlyConfig(group_size=128)}[token]()
    quantize_(model, config)
