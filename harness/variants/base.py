"""The converter: one kind of variant choice (a precision, an fp8 recipe, a quantization...).

A variant is a set of choices, at most one per kind. Each kind is one ``Converter`` that
declares the tokens it accepts, the precision its matmuls run in, what the device must
offer, and how it changes the model and the run. The functions of ``harness.variants``
only walk the registered converters in order; no kind is special-cased outside its module.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import torch
from torch import nn

if TYPE_CHECKING:
    from harness.variants.variant import Variant


class Converter(ABC):
    """One kind of variant choice. Subclasses set ``kind`` and ``tokens`` and implement
    ``skip_reason`` and ``apply``; every other hook has a default that does nothing.

    A *choice* is what ``parse`` returns for a token: the token itself unless the converter
    needs something else (the fp8 recipe, the MoE shape). Hooks that take a variant read
    their own choice with ``self.choice(variant)``.
    """

    #: The kind's name: one choice per kind in a variant ("precision", "fp8", ...).
    kind: ClassVar[str]
    #: The tokens accepted, as listed in error messages.
    tokens: ClassVar[tuple[str, ...]]
    #: Canonical token -> the precision the matmuls run in with it (a key of
    #: hardware_profiles' PRECISIONS). Tokens not listed leave the base precision's.
    compute_precisions: ClassVar[Mapping[str, str]] = {}
    #: True if the converter replaces nn.Linear layers: the layers it left as plain
    #: nn.Linear are reported, and without a precision token the base is bf16 on a GPU
    #: and fp32 on a CPU.
    converts_linears: ClassVar[bool] = False

    # -- parsing --------------------------------------------------------------------------

    def parse(self, token: str, scenario: str, device_type: str) -> Any | None:
        """The choice a token names, or None if this kind does not accept it."""
        return token if token in self.tokens else None

    def resolve(self, choice: Any | None, chosen: list[Converter], scenario: str,
                device_type: str) -> Any | None:
        """The final choice once every token is parsed (``chosen``: the converters that
        got one): a default where none was given, or a check across the whole variant.
        Raise ConfigError for an invalid choice."""
        return choice

    def token(self, choice: Any) -> str:
        """The canonical token of a choice (the part of the variant's name)."""
        return str(choice)

    def compute_precision(self, choice: Any) -> str | None:
        """The precision the matmuls run in with this choice, or None to keep the base's."""
        return self.compute_precisions.get(self.token(choice))

    def choice(self, variant: Variant) -> Any | None:
        """This kind's choice in ``variant`` (None if it has none)."""
        return variant.choice(self.kind)

    # -- checks ---------------------------------------------------------------------------

    @abstractmethod
    def skip_reason(self, variant: Variant, scenario: str, device: torch.device) -> str | None:
        """Why the device or the scenario cannot run this choice (no trial run), or None."""

    def probe(self, variant: Variant, scenario: str, device: torch.device) -> str | None:
        """A small trial of the choice's machinery on ``device``: why it fails, or None.
        Probes run after every converter's ``skip_reason`` has passed."""
        return None

    def probe_model(self, variant: Variant, scenario: str, device: torch.device,
                    model_cfg=None) -> str | None:
        """The trial with the run's model config where the trial depends on its shapes (the
        attention call: heads, GQA, head dim); by default ``probe``."""
        return self.probe(variant, scenario, device)

    # -- running --------------------------------------------------------------------------

    @abstractmethod
    def apply(self, model: nn.Module, variant: Variant, scenario: str,
              device: torch.device) -> dict:
        """Convert ``model`` in place; returns what to report about it (may be empty)."""

    def declares_kernel(self, variant: Variant) -> bool:
        """True if this choice has a kernel whose running ``kernel_reason`` checks."""
        return False

    def kernel_reason(self, variant: Variant, counts, converted: int, unconverted: int,
                      rows: int) -> str | None:
        """Why the operator ``counts`` of one forward at the timed shape (``rows`` rows per
        linear layer; ``converted``/``unconverted`` linear layers) show that this choice's
        kernel did not run (a silent fallback), or None."""
        return None

    def run_context(self, variant: Variant, device: torch.device):
        """A context every step runs under (autocast, an attention kernel)."""
        return contextlib.nullcontext()

    def global_settings(self, variant: Variant):
        """A context for process-wide settings held during the whole measurement."""
        return contextlib.nullcontext()

    def model_config(self, model_cfg, variant: Variant):
        """The model config this choice asks for (the MoE changes the model)."""
        return model_cfg

    def wrap(self, model: nn.Module, variant: Variant) -> nn.Module:
        """The module to run in place of ``model`` (torch.compile wraps it)."""
        return model


def capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA compute capability of ``device``, or None off CUDA."""
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else None


def gpu_reason(what: str, minimum: tuple[int, int], device: torch.device) -> str | None:
    """Why ``what`` cannot run on ``device``, or None: off CUDA it needs an NVIDIA GPU (the
    capability figure means nothing to someone on a CPU); on CUDA, one of compute capability
    ``minimum`` or newer."""
    cap = capability(device)
    need = f"compute capability {minimum[0]}.{minimum[1]} or newer"
    if cap is None:
        return f"{what} needs an NVIDIA GPU ({need}); this run is on the {device.type.upper()}"
    if tuple(cap) < minimum:
        return f"{what} needs {need}; this GPU has {cap[0]}.{cap[1]}"
    return None


def run_probe(fn: Callable[[], Any]) -> str | None:
    """Run a small trial of a variant's machinery; the error message if it fails."""
    try:
        fn()
    except Exception as e:  # any failure of the trial is the reason to skip
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return None


def probe_reason(label: str, fn: Callable[[], Any]) -> str | None:
    """``"<label> cannot run here: <error>"`` if the trial ``fn`` fails, else None."""
    reason = run_probe(fn)
    return f"{label} cannot run here: {reason}" if reason else None
