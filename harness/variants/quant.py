"""Weight quantization through torchao (inference): int8 weight-only, int8 dynamic
activation and weight, int4 weight-only."""

from __future__ import annotations

from torch import nn

from harness.variants.base import probe_reason
from harness.variants.torchao_support import TorchaoConverter, probe_linear, run_trial


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
            variant.quant, lambda: _trial(variant, scenario, device))

    def apply(self, model, variant, scenario, device):
        quantize(model, variant.quant)
        return {}

    def declares_kernel(self, variant):
        return variant.quant == "int8-dynamic"

    def kernel_reason(self, variant, counts, converted, unconverted, rows):
        """int8-dynamic must run ``aten::_int_mm`` and no float matmul in its layers'
        place: torchao's safe_int_mm falls back to float32 when torch._int_mm refuses the
        shape (on CUDA, 16 rows or fewer)."""
        int_mm = counts.get("aten::_int_mm", 0)
        float_mm = sum(counts.get(k, 0) for k in ("aten::mm", "aten::addmm"))
        if not converted or (int_mm >= converted and float_mm - unconverted < converted):
            return None
        return (f"int8-dynamic ran no int8 matmul at this shape ({rows} rows per layer: "
                f"aten::_int_mm x{int_mm}, float aten::mm/addmm x{float_mm} for {converted} "
                "converted layers): torchao's safe_int_mm fell back to a float32 matmul "
                "(torch._int_mm on CUDA needs more than 16 rows; decode's rows are the "
                "batch): use --batch 17 or more")


def _trial(variant, scenario, device) -> None:
    model = probe_linear(variant, device)
    quantize(model, variant.quant)
    run_trial(model, variant, scenario, device)


#: int4 weight-only packed for torch's own tinygemm kernel (``aten._weight_int4pack_mm``,
#: CUDA sm80+, bf16). torchao 0.18's default packing ("plain") needs the separate mslk
#: package, which etameter does not install.
INT4_PACKING_FORMAT = "tile_packed_to_4d"


def quantize(model: nn.Module, token: str) -> None:
    """Quantize the model's Linear layers in place with torchao's ``quantize_``."""
    from torchao.quantization import (Int4WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig, quantize_)

    config = {"int8-weight-only": lambda: Int8WeightOnlyConfig(),
              "int8-dynamic": lambda: Int8DynamicActivationInt8WeightConfig(),
              "int4-weight-only": lambda: Int4WeightOnlyConfig(
                  group_size=128, int4_packing_format=INT4_PACKING_FORMAT)}[token]()
    quantize_(model, config)
