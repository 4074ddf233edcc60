"""What every scenario provides to the runner."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from harness.model import ModelConfig, Transformer
from harness.variants import Variant, run_context
from profiler.flops import LogicalFlops


class Scenario(ABC):
    """A workload: ``build_model()`` (the fp32 reference, seeded), ``prepare(model)`` with the
    variant's model, then ``step()`` repeatedly inside timed windows."""

    name: str = ""

    def __init__(self, model_cfg: ModelConfig, *, batch_size: int, seq_len: int,
                 device: torch.device, variant: Variant, seed: int = 0, new_tokens: int = 16,
                 rank: int = 0):
        self.model_cfg = model_cfg
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.device = device
        self.variant = variant
        self.seed = seed
        self.new_tokens = new_tokens
        self.rank = rank  # under torchrun each rank gets its own data (the same weights)

    def build_model(self) -> nn.Module:
        """The dense fp32 reference with seeded weights: identical in every process. The
        weights are created and initialised on the target device (a 1B model initialised on
        the CPU and copied takes about a minute on a small host)."""
        torch.manual_seed(self.seed)
        with torch.device(self.device):
            return Transformer(self.model_cfg)

    def tokens(self, batch: int, length: int, stream: int = 0) -> torch.Tensor:
        """Seeded random tokens on the device; ``stream`` picks an independent sequence."""
        gen = torch.Generator().manual_seed(self.seed * 1000 + stream + 7919 * self.rank)
        return torch.randint(0, self.model_cfg.vocab_size, (batch, length), generator=gen).to(self.device)

    def context(self):
        return run_context(self.variant, self.device)

    def mark_step(self) -> None:
        """Tell CUDA graph trees (compile-max-autotune) that a new iteration begins, so the
        previous step's graph outputs may be overwritten and no step waits on them."""
        if self.variant.compile == "max-autotune" and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()

    def reset_latency(self) -> None:
        """Forget the latencies recorded so far (called before each timed window)."""

    def window_latency(self) -> tuple[float | None, tuple[float, ...], str | None]:
        """The time to first token, the per-token latencies since ``reset_latency`` (s), and
        why they are missing; only decode measures them."""
        return None, (), f"latency is measured for decode runs only (this is {self.name})"

    @abstractmethod
    def prepare(self, model: nn.Module) -> None:
        """Take the variant's model and build what the steps need (optimizer, data, cache)."""

    @abstractmethod
    def step(self) -> torch.Tensor | None:
        """One unit of work; returns the loss as a device tensor (no host sync) if it has one."""

    @abstractmethod
    def logical_flops(self, convention: str) -> LogicalFlops:
        """Logical FLOPs of one step of the dense reference."""
