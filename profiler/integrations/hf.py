"""A Hugging Face ``transformers`` TrainerCallback that tracks MFU and eta."""

from __future__ import annotations

try:
    from transformers import TrainerCallback
except ImportError as e:
    raise ImportError("profiler.integrations.hf needs transformers: pip install transformers") from e

from profiler.tracker import Tracker


def _trainer_precision(args) -> dict:
    """The tracker's precision from ``TrainingArguments`` (bf16/fp16 mean autocast there), or
    nothing (the tracker then follows the model's parameters)."""
    for flag, precision in (("bf16", "bf16-autocast"), ("fp16", "fp16-autocast")):
        if getattr(args, flag, False):
            return {"precision": precision, "precision_source": f"TrainingArguments({flag}=True)"}
    return {}


class EtameterTrainerCallback(TrainerCallback):
    """Calls ``tracker.step`` after every optimizer step and closes it when training ends.

    Tokens per step come from ``state.num_input_tokens_seen`` when the Trainer counts them
    (``TrainingArguments(include_num_input_tokens_seen=True)``), else from
    ``tokens_per_step``. Give a Tracker or its keyword arguments (built at train begin, on
    the model's device, with the model passed along: it is counted with ``example_input``,
    and without a ``precision`` the tracker follows ``TrainingArguments(bf16=/fp16=)``
    (autocast) or else the model's parameters).
    """

    def __init__(self, tracker: Tracker | None = None, tokens_per_step: int | None = None,
                 **tracker_kwargs):
        self.tracker = tracker
        self.tokens_per_step = tokens_per_step
        self.tracker_kwargs = tracker_kwargs
        self._seen = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.tracker is None:
            kw = dict(self.tracker_kwargs)
            if model is not None:
                kw.setdefault("device", next(model.parameters()).device)
                kw.setdefault("model", model)
            if kw.get("precision") is None:
                kw.update(_trainer_precision(args))
            self.tracker = Tracker(**kw)
        self._seen = getattr(state, "num_input_tokens_seen", 0) or 0

    def on_step_end(self, args, state, control, **kwargs):
        seen = getattr(state, "num_input_tokens_seen", 0) or 0
        if seen > self._seen:
            tokens, self._seen = seen - self._seen, seen
        elif self.tokens_per_step is not None:
            tokens = self.tokens_per_step
        else:
            raise ValueError("EtameterTrainerCallback cannot count tokens: pass tokens_per_step, "
                             "or TrainingArguments(include_num_input_tokens_seen=True)")
        self.tracker.step(tokens=tokens)

    def on_train_end(self, args, state, control, **kwargs):
        self.tracker.close()
