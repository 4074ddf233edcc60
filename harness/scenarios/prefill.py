"""Prefill: one forward pass over batch x seq_len tokens, no gradients."""

from __future__ import annotations

import torch
from torch import nn

from harness.scenarios.base import Scenario
from profiler.flops import LogicalFlops, logical_flops


class PrefillScenario(Scenario):
    name = "prefill"

    def prepare(self, model: nn.Module) -> None:
        self.model = model.eval()
        self.inputs = self.tokens(self.batch_size, self.seq_len)

    def step(self) -> None:
        with torch.inference_mode(), self.context():
            self.model(self.inputs)

    def logical_flops(self, convention: str) -> LogicalFlops:
        return logical_flops(self.model_cfg.shape(), "prefill", batch_size=self.batch_size,
                             seq_len=self.seq_len, convention=convention)
