"""Quality guard: does a variant still compute the same model?

- Inference: the variant's logits against the fp32 reference's on the same input: relative
  error ``||y - y_ref|| / ||y_ref||`` and top-1 agreement (share of positions whose argmax
  token is the same).
- Training: the loss over K steps from the same initial weights and batch, against the fp32
  reference's: the largest relative deviation ``|l - l_ref| / l_ref``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from profiler.errors import ConfigError

QUALITY_BATCH = 2
QUALITY_SEQ = 128


@dataclass(frozen=True)
class Tolerance:
    max_rel_err: float = 0.05
    min_top1: float = 0.9
    max_loss_dev: float = 0.05
    train_steps: int = 4

    def __post_init__(self) -> None:
        if not (self.max_rel_err > 0 and 0 <= self.min_top1 <= 1 and self.max_loss_dev > 0
                and self.train_steps > 0):
            raise ConfigError("quality tolerances must be positive (min_top1 within 0..1)")

    def to_dict(self) -> dict:
        return asdict(self)


def quality_tokens(scenario) -> torch.Tensor:
    """A fixed input for the guard: up to 2 sequences of up to 128 (+1 for targets) tokens."""
    return scenario.tokens(min(scenario.batch_size, QUALITY_BATCH),
                           min(scenario.seq_len, QUALITY_SEQ) + 1, stream=999)


def logits_of(model: nn.Module, tokens: torch.Tensor, context) -> torch.Tensor:
    with torch.inference_mode(), context:
        return model(tokens[:, :-1]).float().cpu()


def compare_logits(reference: torch.Tensor, logits: torch.Tensor, tol: Tolerance) -> dict:
    rel_err = ((logits - reference).norm() / reference.norm()).item()
    top1 = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
    finite = bool(torch.isfinite(logits).all())
    ok = finite and rel_err <= tol.max_rel_err and top1 >= tol.min_top1
    return {"kind": "logits", "rel_err": rel_err if finite else None, "top1_agreement": top1,
            "ok": ok, "tolerance": tol.to_dict(),
            "reason": None if ok else (
                "non-finite logits" if not finite else
                f"relative error {rel_err:.4f} (max {tol.max_rel_err}) or top-1 agreement "
                f"{top1:.3f} (min {tol.min_top1}) outside tolerance")}


def train_losses(model: nn.Module, tokens: torch.Tensor, steps: int, context, scaler=None) -> list[float]:
    """Losses of ``steps`` AdamW steps on one batch (not fused: identical math everywhere)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    losses = []
    model.train()
    for _ in range(steps):
        with context():
            loss = model(inputs, targets)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    return torch.stack(losses).float().cpu().tolist()


def compare_losses(reference: list[float], losses: list[float], tol: Tolerance) -> dict:
    finite = all(torch.isfinite(torch.tensor(losses)).tolist())
    dev = max(abs(a - b) / abs(b) for a, b in zip(losses, reference)) if finite else None
    ok = finite and dev <= tol.max_loss_dev
    return {"kind": "loss", "reference_losses": reference, "losses": losses,
            "max_rel_loss_dev": dev, "ok": ok, "tolerance": tol.to_dict(),
            "reason": None if ok else ("non-finite loss" if not finite else
                                       f"loss deviates {dev:.4f} from the fp32 reference "
                                       f"(max {tol.max_loss_dev})")}
