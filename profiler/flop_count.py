"""Counting a model's logical FLOPs per token with ``torch.utils.flop_counter.FlopCounterMode``.

The forward pass is counted once, on the path that training runs: train mode with autograd
on (so ``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention`` take no fused inference
fast path, whose single kernel FlopCounterMode cannot see), the ``torch.backends.mha`` fast
path off, and the math attention backend (attention as matmuls over the full score matrix:
the "full" convention, with no recompute). Training is 3x the forward pass.

The count is checked against what ran: every module that ran, holds matmul weights in its
subtree (a floating parameter of two or more dimensions, embedding tables excepted) and got
no FLOPs attributed, and every ``nn.Linear`` that got fewer than ``2 * in * out`` per row it
was called on, is *uncounted*: its work ran in a kernel the counter cannot see (a fused fast
path, a custom or quantized kernel). Such a count is too low, so :func:`count_flops`
refuses it unless told otherwise.

Counting leaves the model as it found it: each module's train/eval mode, its buffers (batch
norm statistics), the global RNG state (dropout draws) and the mha fast-path switch are
restored, and no gradient is accumulated (there is no backward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from profiler.errors import ConfigError

#: Modules whose 2-D weight is a lookup table, not a matmul operand.
LOOKUP_MODULES = (nn.Embedding, nn.EmbeddingBag)
#: FlopCounterMode's own tolerance for a Linear's per-call count (rounding of huge figures).
LINEAR_SLACK = 0.99


@dataclass(frozen=True)
class FlopCount:
    """One counted forward pass. ``by_module`` maps a module's name (``""`` for the root) to
    the FLOPs attributed to its subtree; ``uncounted`` names the modules that did matmul work
    the counter could not see (empty when the count is complete)."""

    forward_flops: float
    tokens: int
    training: bool
    by_module: dict[str, float]
    uncounted: tuple[str, ...]

    @property
    def flops_per_token(self) -> float:
        """Logical FLOPs per token: the forward pass, x3 for training."""
        return self.forward_flops * (3 if self.training else 1) / self.tokens

    def uncounted_message(self) -> str | None:
        """What went uncounted and how to proceed, or None when nothing did."""
        if not self.uncounted:
            return None
        shown = ", ".join(self.uncounted[:6]) + (" ..." if len(self.uncounted) > 6 else "")
        return (f"FlopCounterMode saw no (or too few) FLOPs for {len(self.uncounted)} module(s) "
                f"that ran with matmul weights: {shown}. They ran in a kernel it cannot see "
                "(a fused fast path, a custom or quantized kernel), so the counted "
                f"{self.flops_per_token:.4g} FLOPs/token is too low. Give flops_per_token= "
                "(or model_config= with seq_len), or pass allow_uncounted=True to track with "
                "the counted figure and a stored warning")


def example_tokens(example_input) -> int:
    """Tokens in ``example_input``: the element count of its token ids (an integer tensor,
    or a dict's ``input_ids``)."""
    ids = example_input.get("input_ids") if isinstance(example_input, dict) else example_input
    if not isinstance(ids, torch.Tensor):
        raise ConfigError("example_input must be a tensor of token ids or a dict with "
                          "'input_ids'; give flops_per_token= for other inputs")
    if ids.is_floating_point() or ids.is_complex():
        raise ConfigError(f"example_input holds {ids.dtype} values, not token ids, so its "
                          "token count is unknown: give integer token ids (a tensor or a dict "
                          "with 'input_ids'), or flops_per_token=")
    if ids.numel() == 0:
        raise ConfigError("example_input has no tokens")
    return ids.numel()


def unwrap(model: nn.Module) -> nn.Module:
    """The module that does the work under DistributedDataParallel or ``torch.compile``
    (counting through DDP would start a gradient reduction no backward pass finishes)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def count_forward(model: nn.Module, example_input, training: bool = True) -> FlopCount:
    """Count one forward pass of ``model`` on ``example_input`` (see the module docstring)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = unwrap(model)
    tokens = example_tokens(example_input)
    names = {m: name for name, m in model.named_modules()}
    ran: dict[str, float] = {}  # name -> the least FLOPs its Linear calls must have cost
    hooks = [m.register_forward_hook(_recorder(name, ran), with_kwargs=True)
             for m, name in names.items()]
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    fastpath = torch.backends.mha.get_fastpath_enabled()
    counter = FlopCounterMode(display=False)
    try:
        with torch.random.fork_rng(devices=cuda):
            model.train()
            torch.backends.mha.set_fastpath_enabled(False)
            with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), counter:
                out = (model(**example_input) if isinstance(example_input, dict)
                       else model(example_input))
            del out  # free the autograd graph before restoring anything
    finally:
        for h in hooks:
            h.remove()
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    by_module = _by_module(model, names, counter.get_flop_counts())
    return FlopCount(float(counter.get_total_flops()), tokens, training, by_module,
                     _uncounted(model, names, ran, by_module))


def count_flops(model: nn.Module, example_input, training: bool = True,
                allow_uncounted: bool = False) -> FlopCount:
    """Count ``model`` (see :func:`count_forward`) and refuse a count that misses work.

    Raises ConfigError when nothing was counted, or when modules ran uncounted and
    ``allow_uncounted`` is false; with ``allow_uncounted`` the count is returned as it is
    and ``uncounted_message()`` says what it lacks.
    """
    count = count_forward(model, example_input, training)
    if count.forward_flops <= 0:
        raise ConfigError("FlopCounterMode counted no FLOPs for this model (its matmuls run in "
                          "kernels it cannot see): give flops_per_token= or model_config=")
    if count.uncounted and not allow_uncounted:
        raise ConfigError(count.uncounted_message())
    return count


def _recorder(name: str, ran: dict[str, float]):
    def hook(module, args, kwargs, output):
        least = ran.get(name, 0.0)
        if isinstance(module, nn.Linear):
            x = args[0] if args else kwargs.get("input")
            if isinstance(x, torch.Tensor) and module.in_features:
                rows = x.numel() // module.in_features
                least += 2.0 * module.in_features * module.out_features * rows
        ran[name] = least
    return hook


def _by_module(model, names, counts) -> dict[str, float]:
    """FLOPs per module name. FlopCounterMode names a module ``Root.fqn`` (``Root`` alone for
    the root), ``Root`` being the class name of the module it saw called first."""
    root = type(model).__name__
    out = {}
    for name in names.values():
        key = f"{root}.{name}" if name else root
        out[name] = float(sum(counts.get(key, {}).values()))
    return out


def _has_matmul_weights(model: nn.Module) -> dict[nn.Module, bool]:
    """Whether each module's subtree holds a matmul weight (a floating parameter of two or
    more dimensions that is not an embedding table)."""
    has: dict[nn.Module, bool] = {}

    def visit(m: nn.Module) -> bool:
        if m in has:
            return has[m]
        own = not isinstance(m, LOOKUP_MODULES) and any(
            p.ndim >= 2 and p.is_floating_point() for p in m.parameters(recurse=False))
        children = [visit(c) for c in m.children()]
        has[m] = own or any(children)
        return has[m]

    visit(model)
    return has


def _uncounted(model, names, ran, by_module) -> tuple[str, ...]:
    """The innermost modules that ran with matmul weights and got too few FLOPs."""
    has = _has_matmul_weights(model)
    flagged = set()
    for m, name in names.items():
        if name not in ran or not has[m]:
            continue
        counted = by_module.get(name, 0.0)
        if counted <= 0 or counted < LINEAR_SLACK * ran[name]:
            flagged.add(name)
    # Report the innermost: a flagged module whose flagged descendant already names the place.
    inner = [n for n in flagged
             if not any(o != n and (not n or o.startswith(n + ".")) for o in flagged)]
    return tuple(sorted(f"{n or type(model).__name__} ({type(model.get_submodule(n)).__name__})"
                        for n in inner))
