"""What a :class:`profiler.tracker.Tracker` is given, checked before it counts anything.

Every argument that would otherwise become a wrong number or a traceback deep in a window
(a NaN FLOPs per token, a string of tokens, a dict where a model config belongs, a device
this machine does not have, a step after ``close()``) is refused here with a typed etameter
error naming the argument and what it accepts.
"""

from __future__ import annotations

import math
import numbers
import os

from profiler.errors import ConfigError, UsageError
from profiler.measurement import MAX_FIGURE


def positive_number(name: str, value, *, whole: bool = False):
    """``value`` when it is a finite number above zero (a whole one if ``whole``)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # a 0-d tensor or numpy scalar
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a {'whole ' if whole else ''}number, got "
                          f"{type(value).__name__} {str(value)[:40]!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    if value > MAX_FIGURE:
        raise ConfigError(f"{name} must be at most {MAX_FIGURE:g}, got {value!r}: no loop "
                          "counts that much")
    if whole and not float(value).is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value) if whole else value


def check_arguments(*, flops_per_token, model_config, seq_len, window_steps,
                    warmup_steps=0) -> None:
    """Refuse the tracker's arguments that cannot be right, naming the first."""
    positive_number("window_steps", window_steps, whole=True)
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be a whole number >= 0, got {warmup_steps!r}")
    if flops_per_token is not None:
        positive_number("flops_per_token", flops_per_token)
    if seq_len is not None:
        positive_number("seq_len", seq_len, whole=True)
    if model_config is not None:
        from profiler.flops import ModelShape

        if not (isinstance(model_config, (str, os.PathLike, ModelShape))
                or callable(getattr(model_config, "shape", None))):
            raise ConfigError(
                f"model_config must be a profiler.flops.ModelShape, a model config with a "
                f".shape() method (harness.model.ModelConfig), or the path of a config.json or "
                f"etameter TOML; got {type(model_config).__name__} (for a dict of Hugging Face "
                f"keys, write it to a config.json and pass its path)")


def checked_device(device):
    """``device`` as a torch.device this machine has, or ConfigError naming it."""
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"device {device!r} is not a device: use 'cpu', 'cuda' or "
                          f"'cuda:N' ({str(e)[:80]})") from None
    if d.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: the tracker meters a CPU or a CUDA (or ROCm) "
                          "GPU: use 'cpu', 'cuda' or 'cuda:N'")
    if d.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: no CUDA device is available here: use "
                              "device='cpu'")
        if (d.index or 0) >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}")
    return d


def check_step(tracker, tokens):
    """The tokens of one step, after checking the tracker is still open."""
    if tracker._finished:
        raise UsageError("step() after close(): this tracker's run is closed; start a new "
                         "Tracker for another run")
    return positive_number("tokens", tokens)


def check_close(tracker) -> None:
    """Refuse a second ``close()``; mark the tracker closed."""
    if tracker._finished:
        raise UsageError("close() called twice: this tracker's run is already closed "
                         f"({tracker.run_id or 'not stored'})")
    tracker._finished = True
