"""What every scenario provides to the runner."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from harness.model import ModelConfig
from profiler.flops import LogicalFlops


class Scenario(ABC):
    """A workload: ``setup()`` once, then ``step()`` repeatedly inside timed windows."""

    name: str = ""

    def __init__(self, model_cfg: ModelConfig, *, batch_size: int, seq_len: int,
                 device: torch.device, precision: str, seed: int = 0):
        self.model_cfg = model_cfg
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.device = device
        self.precision = precision
        self.seed = seed

    @abstractmethod
    def setup(self) -> None:
        """Build the model, optimiser and data on the device."""

    @abstractmethod
    def step(self) -> torch.Tensor | None:
        """One unit of work; returns the loss as a device tensor (no host sync) if it has one."""

    @abstractmethod
    def logical_flops(self, convention: str) -> LogicalFlops:
        """Logical FLOPs of one step of the dense reference."""
