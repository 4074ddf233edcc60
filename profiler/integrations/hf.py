"""A Hugging Face ``transformers`` TrainerCallback that tracks MFU and eta."""

from __future__ import annotations

try:
    from transformers import TrainerCallback
except ImportError as e:
    raise ImportError("profiler.integrations.hf needs transformers: pip install transformers") from e

from profiler.tracker import Tracker


class EtameterTrainerCallback(TrainerCallback):
    """Calls ``tracker.step`` after every optimizer step and closes it when training ends.

    Tokens per step come from ``state.num_input_tokens_seen`` when the Trainer counts them
    (``TrainingArguments(include_num_input_tokens_seen=True)``), else from
    ``tokens_per_step``. Give a Tracker or its keyword arguments (built at train begin, on
    the model's device, with the model passed along for FLOP counting).
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
                if "example_input" in kw:
                    kw.setdefault("model", model)
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
