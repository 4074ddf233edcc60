"""Decode: ``new_tokens`` tokens per sequence generated greedily after a context of
``seq_len`` tokens, with a static KV cache (fixed shapes; positions are device tensors).

Latency: every generated token is timed by the wall clock after a device synchronisation
(``torch.cuda.synchronize`` per token on a GPU; a CPU computes synchronously), and the time
to first token is a prefill of the context into the cache plus the first token's argmax,
timed once per window by ``window_latency`` (after the window, outside its timing).
"""

from __future__ import annotations

import time

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
            self.prompt = prompt
        self.latencies_s: list[float] = []

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step(self) -> None:
        with torch.inference_mode(), self.context():
            token = self.first
            t0 = time.perf_counter()
            for pos in self.positions:
                logits = self.model(token, cache=self.cache, positions=pos)
                token = logits[:, -1:].argmax(-1)
                self._sync()
                t1 = time.perf_counter()
                self.latencies_s.append(t1 - t0)
                t0 = t1

    def reset_latency(self) -> None:
        self.latencies_s = []

    def window_latency(self) -> tuple[float | None, tuple[float, ...], str | None]:
        """Time to first token (a prefill of the context: the cache's context positions are
        rewritten with the same values) and the per-token latencies of the window."""
        with torch.inference_mode(), self.context():
            self._sync()
            t0 = time.perf_counter()
            logits = self.model(self.prompt, cache=self.cache)
            logits[:, -1:].argmax(-1)
            self._sync()
            first_token_s = time.perf_counter() - t0
        return first_token_s, tuple(self.latencies_s), None

    def logical_flops(self, convention: str) -> LogicalFlops:
        return logical_flops(self.model_cfg.shape(), "decode", batch_size=self.batch_size,
                             seq_len=self.seq_len, convention=convention,
                             new_tokens=self.new_tokens)
