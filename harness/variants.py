"""Variants: named, composable ways to realize the same reference model.

A variant name joins choices with ``+``, at most one per kind, for example
``bf16+compile+sdpa-flash`` or ``int8-dynamic+sdpa-math``:

- precision: ``fp32``, ``tf32``, ``bf16-autocast``, ``bf16`` (bf16 weights),
  ``fp16-autocast``, ``fp16`` (fp16 weights, inference);
- fp8 (torchao): ``fp8-tensorwise`` and ``fp8-rowwise`` (training), ``fp8`` (training:
  tensorwise; inference: dynamic activation and weight, per row);
- weight quantization (torchao, inference): ``int8-weight-only``, ``int8-dynamic``,
  ``int4-weight-only``;
- sparsity: ``2:4`` (semi-structured: torchao's sparse weights for inference, its
  SemiSparseLinear for training);
- ``moe`` or ``moe-E-K``: the MLP becomes E routed experts with top-K routing (default 8-2);
- attention kernel: ``sdpa-math``, ``sdpa-flash``, ``sdpa-efficient``, ``sdpa-cudnn``;
- ``compile`` (torch.compile default mode) or ``compile-max-autotune``.

Every variant is credited with the logical FLOPs of the dense reference of the same model
(with ``moe``, of the MoE model by its active parameters). Only its efficiency changes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from profiler.errors import ConfigError

PRECISIONS = ("fp32", "tf32", "bf16-autocast", "bf16", "fp16-autocast", "fp16")
FP8 = ("fp8", "fp8-tensorwise", "fp8-rowwise")
QUANT = ("int8-weight-only", "int8-dynamic", "int4-weight-only")
SPARSITY = ("2:4",)
ATTENTION = ("sdpa-math", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn")
COMPILE = ("compile", "compile-max-autotune")
MOE_RE = re.compile(r"^moe(?:-(\d+)-(\d+))?$")
PLUGIN_ENV = "ETAMETER_VARIANT_PLUGINS"

#: Precision -> the dtype in which the matmuls run (for the variant's own peak).
COMPUTE = {"fp32": "fp32", "tf32": "tf32", "bf16-autocast": "bf16", "bf16": "bf16",
           "fp16-autocast": "fp16", "fp16": "fp16"}
TORCHAO_HINT = "torchao is not installed: pip install 'etameter[variants]'"

#: Extra model transformations registered by plugins: name -> fn(model, variant) -> None.
CUSTOM: dict[str, callable] = {}


@dataclass(frozen=True)
class Variant:
    """One parsed variant. ``name`` is the canonical spelling (fixed order of kinds)."""

    precision: str
    fp8: str | None = None  # tensorwise, rowwise (training) or dynamic (inference)
    quant: str | None = None
    sparsity: str | None = None
    moe: tuple[int, int] | None = None
    attention: str | None = None
    compile: str | None = None  # "default" or "max-autotune"
    custom: str | None = None

    @property
    def name(self) -> str:
        parts = [self.precision]
        if self.fp8:
            parts.append({"tensorwise": "fp8-tensorwise", "rowwise": "fp8-rowwise",
                          "dynamic": "fp8"}[self.fp8])
        parts += [p for p in (self.quant, self.sparsity) if p]
        if self.moe:
            parts.append(f"moe-{self.moe[0]}-{self.moe[1]}")
        if self.attention:
            parts.append(self.attention)
        if self.compile:
            parts.append("compile" if self.compile == "default" else "compile-max-autotune")
        if self.custom:
            parts.append(self.custom)
        return "+".join(parts)

    @property
    def compute_precision(self) -> str:
        """The precision the matmuls run in: its peak is the variant's own MFU denominator."""
        if self.fp8:
            return "fp8"
        if self.quant == "int8-dynamic":
            return "int8"
        return COMPUTE[self.precision]

    @property
    def weight_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16-autocast": torch.bfloat16, "fp16-autocast": torch.float16}.get(self.precision)

    def to_dict(self) -> dict:
        return {"name": self.name, "precision": self.precision, "fp8": self.fp8,
                "quant": self.quant, "sparsity": self.sparsity, "moe": self.moe,
                "attention": self.attention, "compile": self.compile, "custom": self.custom,
                "compute_precision": self.compute_precision}


def load_plugins() -> None:
    """Import the modules named in $ETAMETER_VARIANT_PLUGINS (comma-separated); each may
    register extra variant tokens in ``CUSTOM``."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        importlib.import_module(module)


def default_precision(scenario: str, device_type: str) -> str:
    if device_type != "cuda":
        return "fp32"
    return "bf16-autocast" if scenario == "train" else "bf16"


def parse_variant(text: str, scenario: str, device_type: str) -> Variant:
    """Parse ``a+b+c``; unknown or conflicting choices are a ConfigError naming them."""
    load_plugins()
    kinds: dict[str, str] = {}
    moe = None
    for token in (t.strip() for t in text.split("+")):
        if not token:
            raise ConfigError(f"variant {text!r} has an empty part")
        kind = next((k for k, names in (("precision", PRECISIONS), ("fp8", FP8), ("quant", QUANT),
                                        ("sparsity", SPARSITY), ("attention", ATTENTION),
                                        ("compile", COMPILE)) if token in names), None)
        if kind is None and (m := MOE_RE.match(token)):
            kind = "moe"
            moe = (int(m.group(1)), int(m.group(2))) if m.group(1) else (8, 2)
        if kind is None and token in CUSTOM:
            kind = "custom"
        if kind is None:
            known = ", ".join(PRECISIONS + FP8 + QUANT + SPARSITY + ("moe", "moe-E-K")
                              + ATTENTION + COMPILE + tuple(CUSTOM))
            raise ConfigError(f"unknown variant part {token!r} in {text!r}: use {known}")
        if kind in kinds:
            raise ConfigError(f"variant {text!r} names two {kind} choices: "
                              f"{kinds[kind]!r} and {token!r}")
        kinds[kind] = token
    fp8 = kinds.get("fp8")
    if fp8 is not None:
        fp8 = {"fp8-tensorwise": "tensorwise", "fp8-rowwise": "rowwise"}.get(
            fp8, "tensorwise" if scenario == "train" else "dynamic")
    if moe is not None and moe[1] > moe[0]:
        raise ConfigError(f"moe-{moe[0]}-{moe[1]}: top-k cannot exceed the number of experts")
    precision = kinds.get("precision")
    if precision is None:
        lowp = fp8 or kinds.get("quant") or kinds.get("sparsity")
        precision = ("bf16" if device_type == "cuda" else "fp32") if lowp else \
            default_precision(scenario, device_type)
    compile_mode = {"compile": "default", "compile-max-autotune": "max-autotune"}.get(
        kinds.get("compile"))
    return Variant(precision=precision, fp8=fp8, quant=kinds.get("quant"),
                   sparsity=kinds.get("sparsity"), moe=moe, attention=kinds.get("attention"),
                   compile=compile_mode, custom=kinds.get("custom"))


# -- capability checks ----------------------------------------------------------------------

def _capability(device: torch.device) -> tuple[int, int] | None:
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else None


def _has_torchao() -> bool:
    try:
        importlib.import_module("torchao")
    except ImportError:
        return False
    return True


def _probe(fn) -> str | None:
    """Run a small trial of the variant's machinery; the error message if it fails."""
    try:
        fn()
    except Exception as e:  # any failure of the trial is the reason to skip
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return None


def skip_reason(variant: Variant, scenario: str, device: torch.device) -> str | None:
    """Why this device or the installed packages cannot run the variant, or None."""
    cap = _capability(device)
    training = scenario == "train"
    if variant.precision == "tf32" and (cap is None or cap < (8, 0)):
        return "tf32 needs an NVIDIA GPU of compute capability 8.0 or newer"
    if variant.precision == "fp16" and training:
        return "fp16 weights are an inference precision: use fp16-autocast for training"
    if variant.fp8:
        if variant.fp8 == "dynamic" and training:
            return "fp8 dynamic quantization is an inference variant"
        if variant.fp8 != "dynamic" and not training:
            return f"fp8-{variant.fp8} is a training recipe: use fp8 for inference"
        if cap is None or cap < (8, 9):
            return "fp8 needs compute capability 8.9 or newer"
    if variant.quant and training:
        return f"{variant.quant} is an inference variant: the train scenario cannot run it"
    if variant.sparsity and (cap is None or cap < (8, 0)):
        return "2:4 semi-structured sparsity needs an NVIDIA GPU of compute capability 8.0 or newer"
    if (variant.fp8 or variant.quant or variant.sparsity) and not _has_torchao():
        return TORCHAO_HINT
    if variant.quant:
        reason = _probe(lambda: _quantize(_probe_linear(variant, device), variant))
        if reason:
            return f"{variant.quant} cannot run here: {reason}"
    if variant.sparsity and not training:
        reason = _probe(lambda: _sparsify(_probe_linear(variant, device)))
        if reason:
            return f"2:4 sparsity cannot run here: {reason}"
    if variant.attention:
        reason = _probe(lambda: _attention_probe(variant, device))
        if reason:
            return f"{variant.attention} cannot run here: {reason}"
    if variant.autocast_dtype is not None:
        reason = _probe(lambda: _autocast_probe(variant, device))
        if reason:
            return f"{variant.precision} cannot run here: {reason}"
    return None


def _probe_linear(variant: Variant, device: torch.device) -> nn.Module:
    return nn.Sequential(nn.Linear(256, 256, bias=False)).to(device, variant.weight_dtype)


def _attention_probe(variant: Variant, device: torch.device) -> None:
    dtype = variant.autocast_dtype or variant.weight_dtype
    q = torch.randn(1, 2, 16, 64, device=device, dtype=dtype)
    with attention_context(variant):
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)


def _autocast_probe(variant: Variant, device: torch.device) -> None:
    with torch.autocast(device.type, dtype=variant.autocast_dtype):
        a = torch.randn(16, 16, device=device)
        (a @ a).sum()


# -- applying a variant ---------------------------------------------------------------------

def attention_context(variant: Variant):
    """The sdpa_kernel context for the variant's attention kernel (or none)."""
    if variant.attention is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"sdpa-math": SDPBackend.MATH, "sdpa-flash": SDPBackend.FLASH_ATTENTION,
               "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
               "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION}[variant.attention]
    return sdpa_kernel(backend)


def run_context(variant: Variant, device: torch.device):
    """Everything a step runs under: autocast and the attention kernel."""
    stack = contextlib.ExitStack()
    if variant.autocast_dtype is not None:
        stack.enter_context(torch.autocast(device.type, dtype=variant.autocast_dtype))
    stack.enter_context(attention_context(variant))
    return stack


@contextlib.contextmanager
def global_settings(variant: Variant):
    """TF32 is process-wide: enable it for the tf32 variant only, and restore it after."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    allow = variant.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def unconverted_linears(model: nn.Module, names: list[str]) -> list[str]:
    """Linear layers that are still plain nn.Linear with a plain weight after conversion."""
    modules = dict(model.named_modules())
    plain = (nn.Parameter, torch.Tensor)
    return [n for n in names if n in modules and type(modules[n]) is nn.Linear
            and type(modules[n].weight) in plain]


def _quantize(model: nn.Module, variant: Variant) -> None:
    from torchao.quantization import (Int4WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig, quantize_)

    config = {"int8-weight-only": lambda: Int8WeightOnlyConfig(),
              "int8-dynamic": lambda: Int8DynamicActivationInt8WeightConfig(),
              "int4-weight-only": lambda: Int4WeightOnlyConfig(group_size=128)}[variant.quant]()
    quantize_(model, config)


def _sparsify(model: nn.Module) -> None:
    from torchao.sparsity import semi_sparse_weight, sparsify_

    _prune_2_4(model)
    sparsify_(model, semi_sparse_weight())


def _prune_2_4(model: nn.Module) -> None:
    """Zero the 2 smallest of every 4 weights in each Linear (magnitude pruning), so the
    weights follow the 2:4 pattern before they are compressed."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.weight.shape[-1] % 4 == 0:
                w = m.weight.view(-1, 4)
                idx = w.abs().argsort(dim=-1)[:, :2]
                w.scatter_(1, idx, 0)


def _fp8_filter(module: nn.Module, fqn: str) -> bool:
    """fp8 layers need dims divisible by 16; the LM head stays in high precision (as in
    torchtitan), since its logits are the most precision-sensitive matmul."""
    return (isinstance(module, nn.Linear) and fqn != "lm_head"
            and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def _float8_training(model: nn.Module, recipe: str) -> None:
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name(recipe),
                               module_filter_fn=_fp8_filter)


def _float8_inference(model: nn.Module) -> None:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
              filter_fn=_fp8_filter)


def _semi_sparse_training(model: nn.Module) -> None:
    from torchao.sparsity.training import SemiSparseLinear, swap_linear_with_semi_sparse_linear

    config = {n: SemiSparseLinear for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n != "lm_head"}
    swap_linear_with_semi_sparse_linear(model, config)


def set_moe_impl(model: nn.Module, variant: Variant, device: torch.device) -> str | None:
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
        if _probe(trial) is None:
            impl = "grouped"
    for m in layers:
        m.impl, m.grouped_dtype = impl, dtype
    return impl


def apply_variant(model: nn.Module, variant: Variant, scenario: str,
                  device: torch.device | None = None) -> dict:
    """Convert ``model`` in place to the variant; returns what was done and left undone."""
    info: dict = {}
    if variant.moe:
        info["moe_impl"] = set_moe_impl(model, variant, device or torch.device("cpu"))
    names = _linear_names(model)
    if variant.weight_dtype != torch.float32:
        model.to(variant.weight_dtype)
    training = scenario == "train"
    if variant.fp8 in ("tensorwise", "rowwise"):
        _float8_training(model, variant.fp8)
    elif variant.fp8 == "dynamic":
        _float8_inference(model)
    if variant.quant:
        _quantize(model, variant)
    if variant.sparsity:
        _semi_sparse_training(model) if training else _sparsify(model)
    if variant.custom:
        CUSTOM[variant.custom](model, variant)
    if variant.fp8 or variant.quant or variant.sparsity:
        left = unconverted_linears(model, names)
        info["unconverted_layers"] = left
        info["converted_layers"] = len(names) - len(left)
    return info


def maybe_compile(model: nn.Module, variant: Variant) -> nn.Module:
    if variant.compile is None:
        return model
    return torch.compile(model, mode=None if variant.compile == "default" else variant.compile)


def moe_model_config(model_cfg, variant: Variant):
    """The model config with the variant's MoE applied (unchanged without moe)."""
    if variant.moe is None:
        return model_cfg
    from dataclasses import replace

    return replace(model_cfg, moe_experts=variant.moe[0], moe_top_k=variant.moe[1])
