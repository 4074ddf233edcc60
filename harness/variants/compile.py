"""torch.compile, in its default mode or max-autotune."""

from __future__ import annotations

import torch

from harness.variants.base import Converter

#: Token -> mode ("default" stands for torch.compile's mode=None).
MODES = {"compile": "default", "compile-max-autotune": "max-autotune"}


class CompileConverter(Converter):
    """compile, compile-max-autotune. The choice is the mode."""

    kind = "compile"
    tokens = tuple(MODES)

    def parse(self, token, scenario, device_type):
        return MODES.get(token)

    def token(self, choice):
        return next(t for t, mode in MODES.items() if mode == choice)

    def skip_reason(self, variant, scenario, device):
        return None

    def apply(self, model, variant, scenario, device):
        return {}

    def wrap(self, model, variant):
        mode = variant.compile
        return torch.compile(model, mode=None if mode == "default" else mode)


#: Warm-up steps added, at most, while each step still compiles (a new shape, a recompile).
MAX_EXTRA_WARMUP = 5


class CompileLog:
    """Every torch.compile compilation during a run, by phase ("prepare", "warmup", "timed",
    "quality"): how many, the time they took, and the graphs dynamo built. Compilation is
    not only the first step's: decode's prefill, a dynamic-shape recompile and the quality
    check's shape each compile again. Listens to ``torch._dynamo.callback`` while started;
    for an eager variant it records nothing and costs nothing."""

    def __init__(self, active: bool = True):
        self.active = active
        self.phase_name = "prepare"
        self.by_phase: dict[str, dict] = {}
        self._t0: float | None = None
        self._graphs0 = 0
        self._registered = False

    def start(self) -> "CompileLog":
        if self.active:
            import torch._dynamo.callback as callback
            from torch._dynamo.utils import counters

            self._graphs0 = counters["stats"]["unique_graphs"]
            callback.callback_handler.register_start_callback(self._started)
            callback.callback_handler.register_end_callback(self._ended)
            self._registered = True
        return self

    def stop(self) -> None:
        if self._registered:
            import torch._dynamo.callback as callback

            callback.callback_handler.remove_start_callback(self._started)
            callback.callback_handler.remove_end_callback(self._ended)
            self._registered = False

    def phase(self, name: str) -> None:
        self.phase_name = name

    def _started(self, args=None) -> None:
        import time

        self._t0 = time.perf_counter()

    def _ended(self, args=None) -> None:
        import time

        entry = self.by_phase.setdefault(self.phase_name, {"count": 0, "time_s": 0.0})
        entry["count"] += 1
        if self._t0 is not None:
            entry["time_s"] += time.perf_counter() - self._t0
        self._t0 = None

    @property
    def count(self) -> int:
        return sum(e["count"] for e in self.by_phase.values())

    def summary(self) -> dict:
        """compile_count, compile_time_s (every compilation), compile_graphs and the split by
        phase; None figures for an eager variant."""
        if not self.active:
            return {"compile_count": None, "compile_time_s": None, "compile_graphs": None,
                    "compiles_by_phase": None}
        from torch._dynamo.utils import counters

        timed = self.by_phase.get("timed", {}).get("count", 0)
        return {"compile_count": self.count,
                "compile_time_s": sum(e["time_s"] for e in self.by_phase.values()),
                "compile_graphs": counters["stats"]["unique_graphs"] - self._graphs0,
                "compiles_by_phase": self.by_phase,
                "compile_note": (f"{timed} compilation(s) inside the timed windows: their time "
                                 "is in the throughput" if timed else None)}
