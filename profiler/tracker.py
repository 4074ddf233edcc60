"""Track MFU and eta inside any training (or inference) loop.

    tracker = Tracker(model_config=cfg, seq_len=2048, store="etameter.db")
    for batch in loader:
        ...
        tracker.step(tokens=batch.numel())
    tracker.close()

``step()`` only counts: it never synchronises the device. Every ``window_steps`` steps a
window closes: the device is synchronised, the meter read, and tokens/s, MFU, power and eta
over the window are printed, stored in SQLite and, if tensorboard is installed and a
directory given, written there. Under torch.distributed each rank meters its own device and
rank 0 aggregates (see profiler.distributed) into one node-level row plus a row per rank.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

import torch
from torch import nn

from profiler.distributed import aggregate
from profiler.errors import ConfigError
from profiler.flops import ModelShape, logical_flops
from profiler.store import Store


def count_flops_per_token(model: nn.Module, example_input, training: bool = True) -> float:
    """Logical FLOPs per token of ``model``, counted once with FlopCounterMode.

    The forward pass is counted on the math attention path (so attention is seen as
    matmuls, with no recompute), and multiplied by 3 for training. ``example_input`` is a
    tensor of token ids, or a dict of model inputs with ``input_ids``.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    tokens = example_input["input_ids"] if isinstance(example_input, dict) else example_input
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(**example_input) if isinstance(example_input, dict) else model(example_input)
    finally:
        model.train(was_training)
    forward = counter.get_total_flops()
    if forward <= 0:
        raise ConfigError("FlopCounterMode counted no FLOPs for this model: give flops_per_token")
    return forward * (3 if training else 1) / tokens.numel()


def resolve_flops_per_token(*, flops_per_token=None, model_config=None, seq_len=None,
                            model=None, example_input=None, training=True,
                            attention_convention="full") -> tuple[float, str]:
    """FLOPs per token and where they came from; exactly one source must be given."""
    sources = [flops_per_token is not None, model_config is not None, example_input is not None]
    if sum(sources) != 1:
        raise ConfigError("give exactly one of flops_per_token, model_config (with seq_len), "
                          "or model with example_input")
    if flops_per_token is not None:
        if flops_per_token <= 0:
            raise ConfigError(f"flops_per_token must be positive, got {flops_per_token}")
        return float(flops_per_token), "given"
    if model_config is not None:
        if not seq_len:
            raise ConfigError("model_config needs seq_len for the attention term")
        shape = model_config if isinstance(model_config, ModelShape) else model_config.shape()
        f = logical_flops(shape, "train" if training else "prefill", batch_size=1,
                          seq_len=seq_len, convention=attention_convention)
        return f.flops_per_token, f"etameter accounting ({attention_convention} attention)"
    if model is None:
        raise ConfigError("example_input needs the model to count")
    return (count_flops_per_token(model, example_input, training),
            "FlopCounterMode, forward on the math attention path" + (" x3" if training else ""))


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


class Tracker:
    """Rolling-window tokens/s, MFU, power and eta of a user loop."""

    def __init__(self, *, flops_per_token: float | None = None, model_config=None,
                 seq_len: int | None = None, model: nn.Module | None = None, example_input=None,
                 training: bool = True, attention_convention: str = "full",
                 precision: str = "bf16", device: torch.device | str | None = None,
                 window_steps: int = 20, store: Store | str | None = None,
                 name: str = "user-loop", tensorboard_dir: str | None = None, meter: bool = True,
                 cpu_tdp_w: float | None = None, printer: Callable[[str], None] | None = print):
        if window_steps <= 0:
            raise ConfigError(f"window_steps must be positive, got {window_steps}")
        self.flops_per_token, self.flops_source = resolve_flops_per_token(
            flops_per_token=flops_per_token, model_config=model_config, seq_len=seq_len,
            model=model, example_input=example_input, training=training,
            attention_convention=attention_convention)
        self.window_steps = window_steps
        self.precision = precision
        self.printer = printer
        dist = _dist()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)
        self.device = self._device(device, model)
        self.ctx = self._device_context()
        self.meter = self._meter(cpu_tdp_w) if meter else None
        self.store = Store(store) if isinstance(store, str) else store
        self.run_id = self._start_run(name, training, attention_convention) if self.rank == 0 else None
        self.tb = self._tensorboard(tensorboard_dir) if self.rank == 0 else None
        self.windows: list[dict] = []
        self._steps = self._tokens = 0
        self._open_window()

    # -- set-up -------------------------------------------------------------------------------

    @staticmethod
    def _device(device, model) -> torch.device:
        if device is not None:
            return torch.device(device)
        if model is not None:
            p = next(model.parameters(), None)
            if p is not None:
                return p.device
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")

    def _device_context(self):
        from hardware_profiles.device import cpu_context, cuda_context
        from hardware_profiles.profiles import load_profiles

        profiles = load_profiles()
        if self.device.type == "cuda":
            return cuda_context(self.device.index or 0, profiles)
        return cpu_context(profiles)

    def _meter(self, cpu_tdp_w):
        from profiler.meters.select import select_meter

        choice = select_meter(self.ctx.type, gpu_uuids=self.ctx.uuids, cpu_tdp_w=cpu_tdp_w)
        self.meter_reason = choice.reason
        return choice.meter

    @property
    def device_key(self) -> str:
        """Ranks sharing this key share a device: their energy is counted once."""
        if self.ctx.type == "cuda":
            return self.ctx.key
        return f"cpu:{socket.gethostname()}"

    def _start_run(self, name, training, convention) -> str | None:
        if self.store is None:
            return None
        from profiler.environment import collect_environment

        config = {"flops_per_token": self.flops_per_token, "flops_source": self.flops_source,
                  "window_steps": self.window_steps, "world_size": self.world,
                  "precision": self.precision, "device": self.ctx.describe(),
                  "meter": self.meter.describe() if self.meter else None}
        return self.store.start_run(
            scenario="train" if training else "prefill", preset=name, variant=self.precision,
            device=self.ctx.name, device_type=self.ctx.type, attention_convention=convention,
            config=config, environment=collect_environment(self.ctx.type), command="tracker")

    def _tensorboard(self, directory):
        if directory is None:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self._print("etameter: tensorboard is not installed; metrics go to the store only "
                        "(pip install tensorboard)")
            return None
        return SummaryWriter(directory)

    # -- the loop -----------------------------------------------------------------------------

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _open_window(self) -> None:
        self._sync()
        if self.meter is not None:
            self.meter.start()
        self._t0 = time.perf_counter()

    def step(self, tokens: int) -> dict | None:
        """Count one step of ``tokens`` tokens; returns the node window when one closes."""
        self._steps += 1
        self._tokens += tokens
        if self._steps >= self.window_steps:
            return self._close_window()
        return None

    def _close_window(self, reopen: bool = True) -> dict | None:
        self._sync()
        duration_s = time.perf_counter() - self._t0
        reading = self.meter.stop(duration_s) if self.meter is not None else None
        local = {
            "rank": self.rank, "device_key": self.device_key, "steps": self._steps,
            "duration_s": duration_s, "tokens": self._tokens,
            "logical_flops": self._tokens * self.flops_per_token,
            "energy_j": reading.energy_j if reading else None,
            "energy_reason": (reading.reason if reading else getattr(self, "meter_reason", "no meter")),
            "energy_method": reading.method if reading else None,
            "energy_estimated": reading.estimated if reading else None,
            "peak_flops_per_s": self.ctx.peak(self.precision).flops_per_s,
            "flags": list(reading.all_flags) if reading else [],
        }
        self._steps = self._tokens = 0
        dist = _dist()
        gathered = [None] * self.world if dist else [local]
        if dist:
            dist.all_gather_object(gathered, local)
        node = None
        if self.rank == 0:
            node = aggregate(gathered)
            node["window"] = len(self.windows)
            node["flags"] = sorted({f for w in gathered for f in w["flags"]})
            self.windows.append(node)
            self._record(node, gathered)
        if reopen:
            self._open_window()
        return node

    def _record(self, node: dict, ranks: list[dict]) -> None:
        est = " (estimated)" if node["energy_estimated"] else ""
        eta = f"{node['eta_flops_per_j']:.3g} FLOP/J{est}" if node["eta_flops_per_j"] else "n/a"
        mfu = f"{100 * node['mfu']:.1f}%" if node["mfu"] is not None else "n/a"
        power = f"{node['avg_power_w']:.0f} W{est}" if node["avg_power_w"] is not None else "n/a"
        self._print(f"etameter: window {node['window']}: {node['tokens_per_s']:.4g} tokens/s, "
                    f"MFU {mfu}, {power}, eta {eta} [{node['energy_method']}]")
        if self.store is not None:
            self.store.add_result(self.run_id, {**self._row(node), "scope": "node"})
            if len(ranks) > 1:
                for r in ranks:
                    row = {"window": node["window"], "steps": r["steps"], "duration_s": r["duration_s"],
                           "tokens_per_s": r["tokens"] / r["duration_s"],
                           "logical_flops": r["logical_flops"], "energy_j": r["energy_j"],
                           "energy_method": r["energy_method"], "energy_estimated": r["energy_estimated"],
                           "flops_per_s": r["logical_flops"] / r["duration_s"], "flags": r["flags"],
                           "scope": "rank", "rank": r["rank"], "detail": {"device_key": r["device_key"]}}
                    self.store.add_result(self.run_id, row)
        if self.tb is not None:
            for key in ("tokens_per_s", "mfu", "avg_power_w", "eta_flops_per_j"):
                if node[key] is not None:
                    self.tb.add_scalar(f"etameter/{key}", node[key], node["window"])

    def _row(self, node: dict) -> dict:
        return {
            "window": node["window"], "duration_s": node["duration_s"],
            "tokens_per_s": node["tokens_per_s"], "logical_flops": node["logical_flops"],
            "logical_flops_per_token": self.flops_per_token, "flops_per_s": node["flops_per_s"],
            "precision": self.precision, "peak_flops_per_s": node["peak_flops_per_s"],
            "mfu": node["mfu"], "mfu_reason": node["mfu_reason"],
            "energy_j": node["energy_j"], "energy_method": node["energy_method"],
            "energy_estimated": node["energy_estimated"], "energy_reason": node["energy_reason"],
            "avg_power_w": node["avg_power_w"], "eta_flops_per_j": node["eta_flops_per_j"],
            "eta_reason": None if node["eta_flops_per_j"] else (node["energy_reason"] or "no energy"),
            "tokens_per_j": node["tokens_per_j"], "flags": node["flags"],
            "detail": {"ranks": node["ranks"], "devices": node["devices"],
                       "device_keys": node["device_keys"], "tokens": node["tokens"]},
        }

    def _print(self, text: str) -> None:
        if self.printer is not None and self.rank == 0:
            self.printer(text)

    # -- the end ------------------------------------------------------------------------------

    def close(self, status: str = "ok", error: str | None = None) -> dict:
        """Close the last (partial) window if it has steps, and the run. Returns the summary."""
        if self._steps and status == "ok":
            self._close_window(reopen=False)
        elif self.meter is not None:
            self.meter.stop(time.perf_counter() - self._t0)
        if self.meter is not None:
            self.meter.close()
        summary = {}
        if self.rank == 0:
            summary = self.summary()
            if self.store is not None:
                self.store.set_run_summary(self.run_id, summary, None)
                self.store.finish_run(self.run_id, status, error)
            if self.tb is not None:
                self.tb.close()
        return summary

    def summary(self) -> dict:
        """Medians over the closed node windows (rank 0)."""
        import statistics

        out = {"windows": len(self.windows), "flops_per_token": self.flops_per_token,
               "flops_source": self.flops_source}
        for key in ("tokens_per_s", "flops_per_s", "mfu", "avg_power_w", "eta_flops_per_j",
                    "tokens_per_j", "energy_j"):
            values = [w[key] for w in self.windows]
            out[key] = statistics.median(values) if values and None not in values else None
        out["energy_method"] = self.windows[0]["energy_method"] if self.windows else None
        out["energy_estimated"] = any(w["energy_estimated"] for w in self.windows)
        out["flags"] = sorted({f for w in self.windows for f in w["flags"]})
        return out

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted", "interrupted by the user (Ctrl-C)")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")
