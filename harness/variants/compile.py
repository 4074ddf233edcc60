"""torch.compile, in its default mode or max-autotune."""

from __future__ import annotations

import torch

from harness.variants.base import Converter

#: Token -> mode ("default" stands for torch.compile's mode=None).
MODES = {"compile": "default", "compile-max-autotune": "max-autotune"}


class CompileConverter(Converter):
    """compile, compile-max-autotune. The choice is the mode."""

    kind = "compile"
    tokens = tuple(MODES)

    def parse(self, token, scenario, device_type):
        return MODES.get(token)

    def token(self, choice):
        return next(t for t, mode in MODES.items() if mode == choice)

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model, variant, scenario, device):
        return {}

    def wrap(self, model, variant):
        mode = variant.compile
        return torch.compile(model, mode=None if mode == "default" else mode)
