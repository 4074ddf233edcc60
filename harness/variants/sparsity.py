"""2:4 semi-structured sparsity through torchao: sparse weights for inference (after
magnitude pruning), SemiSparseLinear for training."""

from __future__ import annotations

import torch
from torch import nn

from harness.variants.base import gpu_reason, probe_reason
from harness.variants.torchao_support import TorchaoConverter, probe_linear, run_trial


class SparsityConverter(TorchaoConverter):
    """2:4. Its matmuls are credited at the dense peak of the base precision."""

    kind = "sparsity"
    tokens = ("2:4",)

    def skip_reason(self, variant, scenario, device):
        return gpu_reason("2:4 semi-structured sparsity", (8, 0), device)

    def probe(self, variant, scenario, device):
        """Convert a small layer and run it as the run will: in training, forward and
        backward under the variant's autocast (which keeps fp32 weights, which the 2:4
        kernel may refuse); in inference, a forward of the compressed weights."""
        missing = super().probe(variant, scenario, device)
        return missing or probe_reason("2:4 sparsity", lambda: _trial(variant, scenario, device))

    def apply(self, model, variant, scenario, device):
        if scenario == "train":
            semi_sparse_training(model)
        else:
            sparsify(model)
        return {}


def _trial(variant, scenario, device) -> None:
    model = probe_linear(variant, device)
    if scenario == "train":
        semi_sparse_training(model)
    else:
        sparsify(model)
    run_trial(model, variant, scenario, device)


def sparse_filter(module: nn.Module, fqn: str) -> bool:
    """The layers 2:4 converts: every Linear but the LM head (whose weight is the token
    embedding when tied, and whose logits are the most precision-sensitive matmul), with
    the input width a multiple of 64 and the output width a multiple of 32 (the sparse
    kernels' tile)."""
    return (isinstance(module, nn.Linear) and fqn != "lm_head"
            and module.in_features % 64 == 0 and module.out_features % 32 == 0)


def sparsify(model: nn.Module) -> None:
    """Prune the converted layers to 2:4, then compress their weights with torchao's
    semi_sparse_weight; both use ``sparse_filter``, so nothing else is touched."""
    from torchao.sparsity import semi_sparse_weight, sparsify_

    prune_2_4(model, sparse_filter)
    sparsify_(model, semi_sparse_weight(), filter_fn=sparse_filter)


def prune_2_4(model: nn.Module, filter_fn=sparse_filter) -> list[str]:
    """Zero the 2 smallest of every 4 weights (magnitude pruning) of the Linear layers
    ``filter_fn`` selects, so they follow the 2:4 pattern before they are compressed.

    Each pruned weight is a new tensor, never an in-place edit: a weight shared with another
    module (a tied embedding) keeps its values there. Returns the pruned layers' names."""
    pruned = []
    with torch.no_grad():
        for name, m in model.named_modules():
            if not filter_fn(m, name) or m.weight.shape[-1] % 4 != 0:
                continue
            w = m.weight.detach().clone()
            flat = w.view(-1, 4)
            flat.scatter_(1, flat.abs().argsort(dim=-1)[:, :2], 0)
            m.weight = nn.Parameter(w, requires_grad=m.weight.requires_grad)
            pruned.append(name)
    return pruned


def semi_sparse_training(model: nn.Module) -> None:
    """Swap every Linear but the LM head for torchao's SemiSparseLinear."""
    from torchao.sparsity.training import SemiSparseLinear, swap_linear_with_semi_sparse_linear

    config = {n: SemiSparseLinear for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n != "lm_head"}
    swap_linear_with_semi_sparse_linear(model, config)
