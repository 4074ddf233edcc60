"""Training step: forward, backward, AdamW update."""

from __future__ import annotations

import torch
from torch import nn

from harness.scenarios.base import Scenario
from profiler.flops import LogicalFlops, logical_flops

#: Distinct random batches cycled through, so no step reuses the previous step's tensors.
N_BATCHES = 4


def make_optimizer(model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type == "cuda" and all(type(p.data) is torch.Tensor for p in params)
    return torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1, fused=fused or None)


class TrainScenario(Scenario):
    name = "train"

    def prepare(self, model: nn.Module) -> None:
        self.model = model
        model.train()
        self.optimizer = make_optimizer(model, self.device)
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if self.variant.precision == "fp16-autocast" else None)
        data = [self.tokens(self.batch_size, self.seq_len + 1, stream=i) for i in range(N_BATCHES)]
        self.batches = [(b[:, :-1], b[:, 1:]) for b in data]
        self._i = 0

    def step(self) -> torch.Tensor:
        inputs, targets = self.batches[self._i % N_BATCHES]
        self._i += 1
        self.mark_step()
        with self.context():
            loss = self.model(inputs, targets)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        # A clone, not loss.detach(): under CUDA graphs (compile-max-autotune) the loss is a
        # graph output that the next replay overwrites, and the window stacks the losses
        # only after its last step.
        return loss.detach().clone()

    def logical_flops(self, convention: str) -> LogicalFlops:
        return logical_flops(self.model_cfg.shape(), "train", batch_size=self.batch_size,
                             seq_len=self.seq_len, convention=convention)
