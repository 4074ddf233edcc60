"""2:4 semi-structured sparsity through torchao: sparse weights for inference (after
magnitude pruning), SemiSparseLinear for training."""

from __future__ import annotations

import torch
from torch import nn

from harness.variants.base import capability, probe_reason
from harness.variants.torchao_support import TorchaoConverter, probe_linear


class SparsityConverter(TorchaoConverter):
    """2:4. Its matmuls are credited at the dense peak of the base precision."""

    kind = "sparsity"
    tokens = ("2:4",)

    def skip_reason(self, variant, scenario, device):
        cap = capability(device)
        if cap is None or cap < (8, 0):
            return ("2:4 semi-structured sparsity needs an NVIDIA GPU of compute capability "
                    "8.0 or newer")
        return None

    def probe(self, variant, scenario, device):
        missing = super().probe(variant, scenario, device)
        if missing or scenario == "train":
            return missing
        return probe_reason("2:4 sparsity", lambda: sparsify(probe_linear(variant, device)))

    def apply(self, model, variant, scenario, device):
        if scenario == "train":
            semi_sparse_training(model)
        else:
            sparsify(model)
        return {}


def sparsify(model: nn.Module) -> None:
    """Prune to 2:4, then compress the weights with torchao's semi_sparse_weight."""
    from torchao.sparsity import semi_sparse_weight, sparsify_

    prune_2_4(model)
    sparsify_(model, semi_sparse_weight())


def prune_2_4(model: nn.Module) -> None:
    """Zero the 2 smallest of every 4 weights in each Linear (magnitude pruning), so the
    weights follow the 2:4 pattern before they are compressed."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.weight.shape[-1] % 4 == 0:
                w = m.weight.view(-1, 4)
                idx = w.abs().argsort(dim=-1)[:, :2]
                w.scatter_(1, idx, 0)


def semi_sparse_training(model: nn.Module) -> None:
    """Swap every Linear but the LM head for torchao's SemiSparseLinear."""
    from torchao.sparsity.training import SemiSparseLinear, swap_linear_with_semi_sparse_linear

    config = {n: SemiSparseLinear for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n != "lm_head"}
    swap_linear_with_semi_sparse_linear(model, config)
