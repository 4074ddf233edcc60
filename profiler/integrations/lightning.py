"""A PyTorch Lightning callback that tracks MFU and eta. Needs ``lightning`` (or the older
``pytorch_lightning``)."""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning import Callback
    except ImportError as e:
        raise ImportError("profiler.integrations.lightning needs PyTorch Lightning: "
                          "pip install lightning") from e

from profiler.tracker import Tracker


def _batch_tokens(batch) -> int:
    """Tokens in a batch: the first tensor's element count (token ids), or input_ids'."""
    if isinstance(batch, dict):
        batch = batch.get("input_ids", next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        batch = batch[0]
    return int(batch.numel())


#: Lightning's precision setting -> the tracker's precision (autocast where Lightning uses it).
LIGHTNING_PRECISION = {"bf16-mixed": "bf16-autocast", "16-mixed": "fp16-autocast",
                       "bf16-true": "bf16", "16-true": "fp16", "32-true": "fp32",
                       "64-true": "fp64"}


def _trainer_precision(trainer) -> dict:
    """The tracker's precision from the Trainer's, or nothing (the tracker then follows the
    module's parameters)."""
    chosen = LIGHTNING_PRECISION.get(str(getattr(trainer, "precision", "")))
    if chosen is None:
        return {}
    return {"precision": chosen,
            "precision_source": f"Lightning Trainer(precision={trainer.precision!r})"}


class EtameterCallback(Callback):
    """Calls ``tracker.step`` after every training batch and closes it at the end.

    Give a Tracker, or the Tracker's keyword arguments (it is then built at the start of
    training, on the module's device, with the module as ``model``; without a ``precision``
    it follows the Trainer's: ``bf16-mixed`` is ``bf16-autocast``, ``32-true`` is ``fp32``).
    ``tokens_fn(batch)`` counts a batch's tokens (default: the element count of its first
    tensor).
    """

    def __init__(self, tracker: Tracker | None = None, tokens_fn=None, **tracker_kwargs):
        self.tracker = tracker
        self.tokens_fn = tokens_fn or _batch_tokens
        self.tracker_kwargs = tracker_kwargs

    def on_train_start(self, trainer, pl_module) -> None:
        if self.tracker is None:
            kwargs = dict(self.tracker_kwargs)
            kwargs.setdefault("device", pl_module.device)
            kwargs.setdefault("model", pl_module)
            if kwargs.get("precision") is None:
                kwargs.update(_trainer_precision(trainer))
            self.tracker = Tracker(**kwargs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tracker.step(tokens=self.tokens_fn(batch))

    def on_train_end(self, trainer, pl_module) -> None:
        self.tracker.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.tracker is not None and not self.tracker.closed:
            status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
            self.tracker.close(status, f"{type(exception).__name__}: {exception}")
