"""The registry of converters, in the fixed order of their kinds.

Built-in kinds come first, in ``BUILTIN_KINDS`` order; plugin kinds follow in the order they
were registered. That order is the order of a variant's canonical name, of the checks, and
of the conversions.
"""

from __future__ import annotations

from hardware_profiles.profiles import PRECISIONS
from harness.variants.base import Converter
from profiler.errors import ConfigError

BUILTIN_KINDS = ("precision", "fp8", "quant", "sparsity", "moe", "attention", "compile")

_registered: dict[str, Converter] = {}


def register(converter):
    """Register a converter (an instance, or a Converter subclass to instantiate); returns
    its argument, so it also serves as a class decorator. A kind is registered once, a
    token belongs to one kind, and every compute precision must be a known one."""
    instance = converter() if isinstance(converter, type) else converter
    if not isinstance(instance, Converter):
        raise ConfigError(f"{converter!r} is not a harness.variants.Converter")
    kind = getattr(instance, "kind", None)
    if not isinstance(kind, str) or not kind or "+" in kind:
        raise ConfigError(f"converter {type(instance).__name__} needs a kind (a name without '+')")
    if kind in _registered:
        raise ConfigError(f"variant kind {kind!r} is already registered")
    tokens = tuple(instance.tokens)
    if not tokens or any(not isinstance(t, str) or not t or "+" in t for t in tokens):
        raise ConfigError(f"variant kind {kind!r} needs tokens (names without '+')")
    for other in _registered.values():
        if taken := set(tokens) & set(other.tokens):
            raise ConfigError(f"variant kind {kind!r}: {', '.join(sorted(taken))} already "
                              f"belongs to kind {other.kind!r}")
    for token, precision in instance.compute_precisions.items():
        check_precision(precision, f"variant kind {kind!r}, token {token!r}")
    _registered[kind] = instance
    return converter


def unregister(kind: str) -> None:
    """Remove a kind's converter (plugins and tests; built-ins are not meant to go)."""
    _registered.pop(kind, None)


def check_precision(precision: str, where: str) -> None:
    """ConfigError unless ``precision`` is in hardware_profiles' PRECISIONS."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{where}: compute precision {precision!r} is not one of "
                          f"{', '.join(PRECISIONS)} (hardware_profiles.profiles.PRECISIONS)")


def _order(kind: str) -> int:
    return BUILTIN_KINDS.index(kind) if kind in BUILTIN_KINDS else len(BUILTIN_KINDS)


def converters() -> list[Converter]:
    """Every registered converter, in the fixed order of kinds."""
    order = {k: i for i, k in enumerate(_registered)}
    return sorted(_registered.values(), key=lambda c: (_order(c.kind), order[c.kind]))


def converter(kind: str) -> Converter:
    """The converter of a kind (KeyError if none is registered)."""
    return _registered[kind]


def is_plugin_kind(kind: str) -> bool:
    """True for a kind that is not built in."""
    return kind not in BUILTIN_KINDS


def known_tokens() -> list[str]:
    """Every accepted token, kind by kind, for error messages."""
    return [t for c in converters() for t in c.tokens]
