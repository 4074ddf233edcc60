"""Variants: named, composable ways to realize the same reference model.

A variant name joins choices with ``+``, at most one per kind, for example
``bf16+compile+sdpa-flash`` or ``int8-dynamic+sdpa-math``. Each kind is a converter
(``base.Converter``) in its own module, registered in a fixed order of kinds:

- precision (``precision.py``): ``fp32``, ``tf32``, ``bf16-autocast``, ``bf16`` (bf16
  weights), ``fp16-autocast``, ``fp16`` (fp16 weights, inference);
- fp8 (``fp8.py``, torchao): ``fp8-tensorwise`` and ``fp8-rowwise`` (training), ``fp8``
  (training: tensorwise; inference: dynamic activation and weight, per row);
- quant (``quant.py``, torchao, inference): ``int8-weight-only``, ``int8-dynamic``,
  ``int4-weight-only``;
- sparsity (``sparsity.py``): ``2:4`` (torchao's sparse weights for inference, its
  SemiSparseLinear for training);
- moe (``moe.py``): ``moe`` or ``moe-E-K``: E routed experts with top-K routing (default 8-2);
- attention (``attention.py``): ``sdpa-math``, ``sdpa-flash``, ``sdpa-efficient``, ``sdpa-cudnn``;
- compile (``compile.py``): ``compile`` (default mode) or ``compile-max-autotune``;
- then the kinds that plugins register (``plugins.py``, $ETAMETER_VARIANT_PLUGINS).

Every variant is credited with the logical FLOPs of the dense reference of the same model
(with ``moe``, of the MoE model by its active parameters). Only its efficiency changes.
Importing this package registers the built-in converters and nothing else: torchao and the
plugins are imported only when a variant is parsed or checked.
"""

from harness.variants.attention import AttentionConverter, attention_context
from harness.variants.base import Converter
from harness.variants.compile import CompileConverter
from harness.variants.convert import (apply_variant, global_settings, maybe_compile,
                                      moe_model_config, run_context, skip_reason)
from harness.variants.fp8 import Fp8Converter
from harness.variants.moe import MoeConverter, set_moe_impl
from harness.variants.plugins import PLUGIN_ENV, load_plugins
from harness.variants.precision import PrecisionConverter, default_precision
from harness.variants.quant import QuantConverter
from harness.variants.registry import converters, register, unregister
from harness.variants.sparsity import SparsityConverter
from harness.variants.torchao_support import TORCHAO_HINT, unconverted_linears
from harness.variants.variant import Choice, Variant, parse_variant

for _builtin in (PrecisionConverter, Fp8Converter, QuantConverter, SparsityConverter,
                 MoeConverter, AttentionConverter, CompileConverter):
    register(_builtin)
del _builtin

__all__ = [
    "TORCHAO_HINT", "PLUGIN_ENV", "Choice", "Converter", "Variant", "apply_variant",
    "attention_context", "converters", "default_precision", "global_settings", "load_plugins",
    "maybe_compile", "moe_model_config", "parse_variant", "register", "run_context",
    "set_moe_impl", "skip_reason", "unconverted_linears", "unregister",
]
