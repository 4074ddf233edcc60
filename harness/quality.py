"""Quality guard: does a variant still compute the same model?

- Inference: the variant's logits against the fp32 reference's on the same input: relative
  error ``||y - y_ref|| / ||y_ref||`` and top-1 agreement (share of positions whose argmax
  token is the same), counted over the positions the reference decides: those whose top-1
  margin exceeds ``MARGIN_FACTOR`` times the reference's own bf16-vs-fp32 spread there. On
  random weights the top-1 margins are tiny and a lower precision flips them for no fault of
  its own; those positions are ambiguous and are not counted (the relative error still is).
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
#: A position counts for top-1 agreement when the reference's top-1 margin exceeds this many
#: times the largest bf16-vs-fp32 logit difference at that position: fp8 (e4m3, 3 mantissa
#: bits) rounds 2^4 = 16 times coarser than bf16 (7 bits).
MARGIN_FACTOR = 16.0
#: Fewer decisive positions than this: top-1 agreement is not judged (None, with the reason).
MIN_DECISIVE = 16


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


def decisive_positions(reference: torch.Tensor, spread: torch.Tensor | None) -> torch.Tensor:
    """Positions (a boolean mask over batch x tokens) whose reference top-1 margin exceeds
    ``MARGIN_FACTOR`` times the reference's bf16-vs-fp32 spread there (every position if no
    spread was measured)."""
    if spread is None:
        return torch.ones(reference.shape[:-1], dtype=torch.bool)
    top2 = reference.topk(2, dim=-1).values
    margin = top2[..., 0] - top2[..., 1]
    noise = (spread.float() - reference).abs().amax(-1)
    return margin > MARGIN_FACTOR * noise


def compare_logits(reference: torch.Tensor, logits: torch.Tensor, tol: Tolerance,
                   spread: torch.Tensor | None = None) -> dict:
    """The variant's logits against the fp32 reference's. ``spread``: the reference model's
    own logits in bf16 (autocast), which sets which positions top-1 agreement counts."""
    rel_err = ((logits - reference).norm() / reference.norm()).item()
    same = logits.argmax(-1) == reference.argmax(-1)
    decisive = decisive_positions(reference, spread)
    n = int(decisive.sum())
    top1 = same[decisive].float().mean().item() if n >= MIN_DECISIVE else None
    finite = bool(torch.isfinite(logits).all())
    ok = finite and rel_err <= tol.max_rel_err and (top1 is None or top1 >= tol.min_top1)
    everywhere = same.float().mean().item()
    # top1_agreement stays a number for the reports: over the decisive positions where it is
    # judged, else over all positions (then top1_judged is False, with top1_reason).
    return {"kind": "logits", "rel_err": rel_err if finite else None,
            "top1_agreement": top1 if top1 is not None else everywhere,
            "top1_judged": top1 is not None, "top1_agreement_all_positions": everywhere,
            "decisive_positions": n, "positions": int(decisive.numel()),
            "margin_factor": MARGIN_FACTOR if spread is not None else None,
            "reference_bf16_rel_spread": (((spread.float() - reference).norm()
                                           / reference.norm()).item() if spread is not None else None),
            "top1_reason": None if top1 is not None else (
                f"only {n} of {decisive.numel()} positions have a reference top-1 margin above "
                f"{MARGIN_FACTOR:g}x its bf16-vs-fp32 spread (< {MIN_DECISIVE}): top-1 "
                "agreement is not judged (random weights have tiny margins)"),
            "ok": ok, "tolerance": tol.to_dict(),
            "reason": None if ok else (
                "non-finite logits" if not finite else
                f"relative error {rel_err:.4f} (max {tol.max_rel_err}) or top-1 agreement "
                f"{'n/a' if top1 is None else f'{top1:.3f}'} (min {tol.min_top1}) outside "
                "tolerance")}


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
        losses.append(loss.detach().clone())
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


#: A train run's quality check keeps its copy of the initial weights on the device when the
#: state dict takes at most this share of the device's free memory (else on the CPU).
KEEP_ON_DEVICE_SHARE = 0.25


def snapshot_state(model: nn.Module, device: torch.device,
                   free_bytes: int | None = None) -> tuple[dict, str]:
    """A copy of the model's state dict, and where it is kept: on the device when memory
    allows (a copy to the CPU and back of a 1B model costs seconds per check), else on the
    CPU. ``free_bytes``: the device's free memory (default: CUDA's own figure)."""
    state = model.state_dict()
    size = sum(v.numel() * v.element_size() for v in state.values())
    if free_bytes is None and device.type == "cuda":
        free_bytes = torch.cuda.mem_get_info(device)[0]
    if free_bytes is None or size <= KEEP_ON_DEVICE_SHARE * free_bytes:
        return {k: v.detach().clone() for k, v in state.items()}, "device"
    return ({k: v.detach().to("cpu", copy=True) for k, v in state.items()},
            f"cpu: the state dict ({size / 2**30:.2f} GiB) is more than "
            f"{KEEP_ON_DEVICE_SHARE:.0%} of the device's free memory")
