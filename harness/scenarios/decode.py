"""Decode: ``new_tokens`` tokens per sequence generated greedily after a context of
``seq_len`` tokens, with a static KV cache (fixed shapes; positions are device tensors)."""

from __future__ import annotations

import torch
from torch import nn

from harness.model import KVCache
from harness.scenarios.base import Scenario
from profiler.flops import LogicalFlops, logical_flops


class DecodeScenario(Scenario):
    name = "decode"

    def prepare(self, model: nn.Module) -> None:
        self.model = model.eval()
        cache_dtype = self.variant.autocast_dtype or self.variant.weight_dtype
        with torch.inference_mode(), self.context():
            self.cache = KVCache(self.model_cfg, self.batch_size, self.seq_len + self.new_tokens,
                                 self.device, cache_dtype)
            prompt = self.tokens(self.batch_size, self.seq_len)
            # The context is filled once; every step regenerates from it (positions >= seq_len
            # are simply overwritten), so each step does the same logical work.
            logits = model(prompt, cache=self.cache)
            self.first = logits[:, -1:].argmax(-1)
            self.positions = [torch.tensor([self.seq_len + i], device=self.device)
                              for i in range(self.new_tokens)]

    def step(self) -> None:
        with torch.inference_mode(), self.context():
            token = self.first
            for pos in self.positions:
                logits = self.model(token, cache=self.cache, positions=pos)
                token = logits[:, -1:].argmax(-1)

    def logical_flops(self, convention: str) -> LogicalFlops:
        return logical_flops(self.model_cfg.shape(), "decode", batch_size=self.batch_size,
                             seq_len=self.seq_len, convention=convention,
                             new_tokens=self.new_tokens)
