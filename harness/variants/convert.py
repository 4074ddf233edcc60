"""Checking, converting and running a variant: each function walks the variant's
converters in the fixed order of kinds."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from harness.variants import registry
from harness.variants.base import Converter
from harness.variants.torchao_support import linear_names, unconverted_linears
from harness.variants.variant import Variant


def converters_of(variant: Variant) -> list[Converter]:
    """The converters of the variant's choices, in the fixed order of kinds."""
    return [registry.converter(c.kind) for c in variant.choices]


def skip_reason(variant: Variant, scenario: str, device: torch.device,
                model_cfg=None) -> str | None:
    """Why this device or the installed packages cannot run the variant, or None. Every
    converter's own check comes first; then their trial runs (probes), in order, with the
    run's model config (``model_cfg``) where a trial depends on the model's shapes."""
    convs = converters_of(variant)
    for conv in convs:
        reason = conv.skip_reason(variant, scenario, device)
        if reason:
            return reason
    for conv in convs:
        reason = conv.probe_model(variant, scenario, device, model_cfg)
        if reason:
            return reason
    return None


@contextlib.contextmanager
def reference_settings():
    """Process-wide settings for computing a quality reference: exact fp32 matmuls (no TF32),
    whatever the variant's ``global_settings`` will later set."""
    from harness.variants.precision import tf32_setting

    with tf32_setting(False):
        yield


def apply_variant(model: nn.Module, variant: Variant, scenario: str,
                  device: torch.device | None = None) -> dict:
    """Convert ``model`` in place to the variant; returns what was done and left undone."""
    device = device or torch.device("cpu")
    convs = converters_of(variant)
    names = linear_names(model)
    info: dict = {}
    for conv in convs:
        info.update(conv.apply(model, variant, scenario, device) or {})
    if any(c.converts_linears for c in convs):
        left = unconverted_linears(model, names)
        info["unconverted_layers"] = left
        info["converted_layers"] = len(names) - len(left)
    return info


def run_context(variant: Variant, device: torch.device):
    """Everything a step runs under: autocast and the attention kernel."""
    stack = contextlib.ExitStack()
    for conv in converters_of(variant):
        stack.enter_context(conv.run_context(variant, device))
    return stack


@contextlib.contextmanager
def global_settings(variant: Variant):
    """Process-wide settings for the whole measurement, restored after (TF32 is on for the
    tf32 variant only)."""
    with contextlib.ExitStack() as stack:
        for conv in converters_of(variant):
            stack.enter_context(conv.global_settings(variant))
        yield


def maybe_compile(model: nn.Module, variant: Variant) -> nn.Module:
    """The module to run: ``model`` itself, or wrapped (torch.compile) by the variant."""
    for conv in converters_of(variant):
        model = conv.wrap(model, variant)
    return model


def moe_model_config(model_cfg, variant: Variant):
    """The model config with the variant's MoE applied (unchanged without moe)."""
    for conv in converters_of(variant):
        model_cfg = conv.model_config(model_cfg, variant)
    return model_cfg
