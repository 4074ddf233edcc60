"""Training step of the dense reference: forward, backward, AdamW update."""

from __future__ import annotations

import contextlib

import torch

from harness.model import Transformer
from harness.scenarios.base import Scenario
from profiler.errors import ConfigError
from profiler.flops import LogicalFlops, logical_flops

#: Precisions this scenario runs: fp32 throughout, or bf16 autocast with fp32 master weights.
TRAIN_PRECISIONS = ("fp32", "bf16")
#: Distinct random batches cycled through, so no step reuses the previous step's tensors.
N_BATCHES = 4


class TrainScenario(Scenario):
    name = "train"

    def setup(self) -> None:
        if self.precision not in TRAIN_PRECISIONS:
            raise ConfigError(f"precision must be one of {TRAIN_PRECISIONS} for the train "
                              f"scenario, got {self.precision!r}")
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.model = Transformer(self.model_cfg).to(self.device)
        self.model.train()
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.1,
                                           fused=fused or None)
        # Random tokens: the benchmark measures work, not learning; seeded so runs compare.
        data = torch.randint(0, self.model_cfg.vocab_size,
                             (N_BATCHES, self.batch_size, self.seq_len + 1), generator=gen)
        self.batches = [(b[:, :-1].to(self.device), b[:, 1:].to(self.device)) for b in data]
        self._i = 0

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self) -> torch.Tensor:
        inputs, targets = self.batches[self._i % N_BATCHES]
        self._i += 1
        with self._autocast():
            loss = self.model(inputs, targets)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def logical_flops(self, convention: str) -> LogicalFlops:
        return logical_flops(self.model_cfg.shape(), "train", batch_size=self.batch_size,
                             seq_len=self.seq_len, convention=convention)
