"""A parsed variant, and the parser that builds it from ``a+b+c``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.variants import registry
from harness.variants.plugins import load_plugins
from harness.variants.precision import TABLE
from profiler.errors import ConfigError


@dataclass(frozen=True)
class Choice:
    """One kind's choice in a variant: its canonical token and what the converter uses."""

    kind: str
    token: str
    value: Any


@dataclass(frozen=True)
class Variant:
    """One parsed variant: its choices in the fixed order of kinds (always a precision),
    and the precision its matmuls run in, whose peak is the variant's own MFU denominator."""

    choices: tuple[Choice, ...]
    compute_precision: str

    def choice(self, kind: str) -> Any | None:
        """The choice of a kind (None if the variant has none)."""
        return next((c.value for c in self.choices if c.kind == kind), None)

    @property
    def name(self) -> str:
        """The canonical spelling: the choices' tokens in the fixed order of kinds."""
        return "+".join(c.token for c in self.choices)

    @property
    def precision(self) -> str:
        """The precision token (fp32, tf32, bf16-autocast, bf16, fp16-autocast, fp16)."""
        return self.choice("precision")

    @property
    def weight_dtype(self) -> torch.dtype:
        return TABLE[self.precision].weight_dtype

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return TABLE[self.precision].autocast_dtype

    @property
    def fp8(self) -> str | None:
        """tensorwise, rowwise (training) or dynamic (inference)."""
        return self.choice("fp8")

    @property
    def quant(self) -> str | None:
        return self.choice("quant")

    @property
    def sparsity(self) -> str | None:
        return self.choice("sparsity")

    @property
    def moe(self) -> tuple[int, int] | None:
        """(experts, top-k), or None for the dense MLP."""
        return self.choice("moe")

    @property
    def attention(self) -> str | None:
        return self.choice("attention")

    @property
    def compile(self) -> str | None:
        """"default" or "max-autotune" (None: eager)."""
        return self.choice("compile")

    @property
    def custom(self) -> str | None:
        """The plugin kinds' tokens joined with "+", or None."""
        return "+".join(c.token for c in self.choices if registry.is_plugin_kind(c.kind)) or None

    def to_dict(self) -> dict:
        return {"name": self.name, "precision": self.precision, "fp8": self.fp8,
                "quant": self.quant, "sparsity": self.sparsity, "moe": self.moe,
                "attention": self.attention, "compile": self.compile, "custom": self.custom,
                "compute_precision": self.compute_precision}


def parse_variant(text: str, scenario: str, device_type: str) -> Variant:
    """Parse ``a+b+c``; unknown or conflicting choices are a ConfigError naming them."""
    load_plugins()
    convs = registry.converters()
    found: dict[str, tuple[str, Any]] = {}  # kind -> (token as written, choice)
    for token in (t.strip() for t in text.split("+")):
        if not token:
            raise ConfigError(f"variant {text!r} has an empty part")
        kind, choice = _match(convs, token, scenario, device_type)
        if kind is None:
            known = ", ".join(registry.known_tokens())
            raise ConfigError(f"unknown variant part {token!r} in {text!r}: use {known}")
        if kind in found:
            raise ConfigError(f"variant {text!r} names two {kind} choices: "
                              f"{found[kind][0]!r} and {token!r}")
        found[kind] = (token, choice)
    chosen = [c for c in convs if c.kind in found]
    choices = []
    for conv in convs:
        value = conv.resolve(found.get(conv.kind, (None, None))[1], chosen, scenario, device_type)
        if value is not None:
            choices.append(Choice(conv.kind, conv.token(value), value))
    return Variant(tuple(choices), _compute_precision(choices))


def _match(convs, token: str, scenario: str, device_type: str) -> tuple[str | None, Any]:
    for conv in convs:
        choice = conv.parse(token, scenario, device_type)
        if choice is not None:
            return conv.kind, choice
    return None, None


def _compute_precision(choices: list[Choice]) -> str:
    """The first override (fp8, int8-dynamic, a plugin's) in the order of kinds, else the
    precision token's. It must be one of hardware_profiles' PRECISIONS."""
    declared = [(c.kind, registry.converter(c.kind).compute_precision(c.value)) for c in choices]
    precision = next((p for kind, p in declared if kind != "precision" and p is not None),
                     dict(declared).get("precision"))
    registry.check_precision(precision, f"variant {'+'.join(c.token for c in choices)!r}")
    return precision
