"""Track MFU and eta inside any training (or inference) loop.

    tracker = Tracker(model_config=cfg, seq_len=2048, store="etameter.db")
    for batch in loader:
        ...
        tracker.step(tokens=batch.numel())
    tracker.close()

``step()`` only counts: it never synchronises the device. The first ``warmup_steps`` steps
(default 2: the loop's compilation, allocator and cache warm-up) are counted apart and not
timed; then every ``window_steps`` steps a window closes: the device is synchronised, the meter read, and tokens/s, MFU, power and eta
over the window are printed, stored in SQLite and, if tensorboard is installed and a
directory given, written there. Under torch.distributed each rank meters its own device and
rank 0 aggregates (see profiler.distributed) into one node-level row plus a row per rank.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch
from torch import nn

from profiler.errors import ConfigError
from profiler.flop_count import count_flops
from profiler.flops import ModelShape, logical_flops
from profiler.lifecycle import interrupt_reason
from profiler.measurement import Energy, Window, summarise
from profiler.recorder import WindowRecorder, dist_group
from profiler.store import Store
from profiler.tracker_checks import check_arguments, check_close, check_step, checked_device

#: The tracker measures no idle baseline (bench does, with --idle-s).
IDLE_REASON = ("no idle baseline was measured (the tracker measures none; "
               "etameter bench --idle-s does)")
#: Steps at the start of a loop that are not timed (its warm-up), unless told otherwise.
WARMUP_STEPS = 2
#: What to do about a noisy tracked run (the tracker's own knobs, not bench's flags).
NOISY_ADVICE = ("use longer windows (window_steps=), skip more of the loop's warm-up "
                "(warmup_steps=), or a quieter machine")
#: Precision tokens the tracker accepts: a dense-peak precision, or autocast to one.
AUTOCAST = {"bf16-autocast": "bf16", "fp16-autocast": "fp16"}
#: Parameter dtype -> the precision whose peak a loop in it is held against.
DTYPE_PRECISION = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32",
                   torch.float64: "fp64"}


def resolve_precision(precision: str | None, model: nn.Module | None,
                      device_type: str) -> tuple[str, str, str]:
    """``(variant, compute precision, source)`` of the tracked loop.

    A given ``precision`` is a peak precision (``fp32``, ``bf16``, ...) or an autocast token
    (``bf16-autocast``: MFU against the bf16 peak). Without one it follows the loop: the dtype
    most of the model's floating parameters have, else fp32 on a CPU and bf16 on a GPU.
    Autocast cannot be seen from outside the loop: declare it with ``precision=``.
    """
    from hardware_profiles.profiles import PRECISIONS

    if precision is not None:
        if precision not in PRECISIONS and precision not in AUTOCAST:
            raise ConfigError(f"precision must be one of {(*PRECISIONS, *AUTOCAST)}, got "
                              f"{precision!r} (bf16-autocast for a loop under torch.autocast)")
        return precision, AUTOCAST.get(precision, precision), "given"
    if model is not None:
        sizes: dict = {}
        for p in model.parameters():
            if p.is_floating_point():
                sizes[p.dtype] = sizes.get(p.dtype, 0) + p.numel()
        if sizes:
            dtype = max(sizes, key=sizes.get)
            if dtype in DTYPE_PRECISION:
                chosen = DTYPE_PRECISION[dtype]
                return chosen, chosen, "model parameters"
    chosen = "bf16" if device_type == "cuda" else "fp32"
    return chosen, chosen, "device default"


def resolve_flops_per_token(*, flops_per_token=None, model_config=None, seq_len=None,
                            model=None, example_input=None, training=True,
                            attention_convention="full",
                            allow_uncounted=False) -> tuple[float, str, str | None]:
    """FLOPs per token, where they came from, and a warning (None when the figure is whole);
    exactly one source must be given. A counted model is counted by
    :func:`profiler.flop_count.count_flops`, which refuses a count that misses work unless
    ``allow_uncounted``."""
    sources = [flops_per_token is not None, model_config is not None, example_input is not None]
    if sum(sources) != 1:
        raise ConfigError("give exactly one of flops_per_token, model_config (with seq_len), "
                          "or model with example_input")
    if flops_per_token is not None:
        if flops_per_token <= 0:
            raise ConfigError(f"flops_per_token must be positive, got {flops_per_token}")
        return float(flops_per_token), "given", None
    if model_config is not None:
        if not seq_len:
            raise ConfigError("model_config needs seq_len for the attention term")
        if isinstance(model_config, (str, os.PathLike)):  # a config.json or etameter TOML
            from profiler.model_keys import shape_from_file

            shape = shape_from_file(model_config)
        else:
            shape = model_config if isinstance(model_config, ModelShape) else model_config.shape()
        f = logical_flops(shape, "train" if training else "prefill", batch_size=1,
                          seq_len=seq_len, convention=attention_convention)
        return f.flops_per_token, f"etameter accounting ({attention_convention} attention)", None
    if model is None:
        raise ConfigError("example_input needs the model to count")
    if attention_convention != "full":
        raise ConfigError("a counted model's attention is the full score matrix (the 'full' "
                          "convention): use attention_convention='full', or model_config= "
                          f"for the {attention_convention!r} convention")
    count = count_flops(model, example_input, training, allow_uncounted)
    source = ("FlopCounterMode, forward in train mode on the math attention path"
              + (" x3" if training else ""))
    return count.flops_per_token, source, count.uncounted_message()


class Tracker:
    """Rolling-window tokens/s, MFU, power and eta of a user loop.

    FLOPs per token come from exactly one of ``flops_per_token``, ``model_config`` (with
    ``seq_len``) or ``model`` with ``example_input`` (counted; ``allow_uncounted`` accepts a
    count that misses fused or custom kernels, with a stored warning). ``precision`` (None:
    follow the model's parameters, else fp32 on a CPU and bf16 on a GPU; ``bf16-autocast``
    for a loop under autocast) picks the dense peak MFU is held against; ``precision_source``
    says where a given one came from (the integrations set it). ``prometheus_port``
    (``[ADDR:]PORT``; PORT + LOCAL_RANK under torchrun) serves the windows as Prometheus metrics
    while the loop runs, or ``metrics`` takes a :class:`profiler.metrics_export.MetricsExporter`
    (see docs/monitoring.md).
    """

    def __init__(self, *, flops_per_token: float | None = None, model_config=None,
                 seq_len: int | None = None, model: nn.Module | None = None, example_input=None,
                 training: bool = True, attention_convention: str = "full",
                 precision: str | None = None, precision_source: str | None = None,
                 allow_uncounted: bool = False, device: torch.device | str | None = None,
                 window_steps: int = 20, warmup_steps: int = WARMUP_STEPS,
                 store: Store | str | None = None,
                 name: str = "user-loop", tensorboard_dir: str | None = None, meter: bool = True,
                 cpu_tdp_w: float | None = None, printer: Callable[[str], None] | None = print,
                 profile_files: tuple[str, ...] = (), prometheus_port=None, metrics=None):
        self._finished = False
        check_arguments(flops_per_token=flops_per_token, model_config=model_config,
                        seq_len=seq_len, window_steps=window_steps, warmup_steps=warmup_steps)
        self.warmup_steps = self._warm_left = warmup_steps
        self.device = self._device(device, model)
        self.variant, self.precision, self.precision_source = resolve_precision(
            precision, model, self.device.type)
        if precision is not None and precision_source:
            self.precision_source = precision_source
        self.flops_per_token, self.flops_source, self.flops_warning = resolve_flops_per_token(
            flops_per_token=flops_per_token, model_config=model_config, seq_len=seq_len,
            model=model, example_input=example_input, training=training,
            attention_convention=attention_convention, allow_uncounted=allow_uncounted)
        self.window_steps = window_steps
        self.printer = printer
        self.attention_convention = attention_convention
        dist = dist_group()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)
        self.ctx = self._device_context(profile_files)
        self.meter_reason = "metering is off (meter=False)"
        self.meter = self._meter(cpu_tdp_w) if meter else None
        self._peak = self.ctx.peak(self.precision)
        self.store = Store(store) if isinstance(store, str) else store
        self._ceiling, self._ceiling_reason = self._measured_ceiling()
        self._flags = ("flops_uncounted",) if self.flops_warning else ()
        self.run_id = self._start_run(name, training, attention_convention) if self.rank == 0 else None
        self.metrics = metrics if metrics is not None else self._exporter(prometheus_port, dist)
        self.recorder = WindowRecorder(self.store if self.rank == 0 else None, self.run_id,
                                       metrics=self.metrics)
        self.tb = self._tensorboard(tensorboard_dir) if self.rank == 0 else None
        if self.flops_warning:
            self._print(f"etameter: warning: {self.flops_warning}")
        self.windows: list[dict] = []
        self._steps = self._tokens = self._closed = 0
        self._window_open = False
        if not warmup_steps:
            self._open_window()

    # -- set-up -------------------------------------------------------------------------------

    @staticmethod
    def _device(device, model) -> torch.device:
        if device is not None:
            return checked_device(device)
        if model is not None:
            p = next(model.parameters(), None)
            if p is not None:
                return p.device
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")

    def _device_context(self, profile_files):
        from hardware_profiles.device import cpu_context, cuda_context
        from hardware_profiles.profiles import load_profiles

        profiles = load_profiles(profile_files)
        if self.device.type == "cuda":
            return cuda_context(self.device.index or 0, profiles)
        return cpu_context(profiles)

    def _meter(self, cpu_tdp_w):
        from profiler.meters.select import select_meter

        choice = select_meter(self.ctx.meter_request(cpu_tdp_w=cpu_tdp_w))
        self.meter_reason = choice.reason
        return choice.meter

    @property
    def device_key(self) -> str:
        """Ranks sharing this key share a device: their energy is counted once."""
        return self.ctx.share_key

    def _measured_ceiling(self) -> tuple[float | None, str | None]:
        """The device's stored matmul ceiling at the reference precision, as bench reads it."""
        row = (self.store.best_ceiling(self.ctx.key, "matmul", self.precision)
               if self.store is not None else None)
        if row is not None:
            return row["value"], None
        return None, (f"no {self.precision} matmul ceiling stored for this device: "
                      "run etameter calibrate" + ("" if self.store else " and give store="))

    def _start_run(self, name, training, convention) -> str | None:
        if self.store is None:
            return None
        from profiler.environment import collect_environment

        config = {"flops_per_token": self.flops_per_token, "flops_source": self.flops_source,
                  "flops_warning": self.flops_warning,
                  "window_steps": self.window_steps, "warmup_steps": self.warmup_steps,
                  "world_size": self.world,
                  "precision": self.precision, "precision_source": self.precision_source,
                  "variant": self.variant, "device": self.ctx.describe(),
                  "meter": self.meter.describe() if self.meter else None}
        return self.store.start_run(
            scenario="train" if training else "prefill", preset=name, variant=self.variant,
            device=self.ctx.name, device_type=self.ctx.type, attention_convention=convention,
            config=config, environment=collect_environment(self.ctx.type), command="tracker")

    def _exporter(self, port, dist):
        if port is None:
            return None
        from profiler.metrics_export import MetricsExporter, shared_run_id

        return MetricsExporter({"run_id": shared_run_id(self.run_id, dist), "variant": self.variant,
                                "precision": self.precision, "device": self.ctx.name}, port)

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
        self._window_open = True
        self._t0 = time.perf_counter()

    def step(self, tokens: int) -> dict | None:
        """Count one step of ``tokens`` tokens; returns the node window when one closes. A
        warm-up step is not timed: the first window opens after the last of them."""
        tokens = check_step(self, tokens)
        if self._warm_left:
            self._warm_left -= 1
            if not self._warm_left:
                self._open_window()
            return None
        self._steps += 1
        self._tokens += tokens
        if self._steps >= self.window_steps:
            return self._close_window()
        return None

    def _close_window(self, reopen: bool = True) -> dict | None:
        self._sync()
        self._window_open = False
        duration_s = time.perf_counter() - self._t0
        reading = self.meter.stop(duration_s) if self.meter is not None else None
        window = Window(
            window=self._closed, steps=self._steps,
            duration_s=duration_s, tokens=self._tokens,
            logical_flops=self._tokens * self.flops_per_token,
            logical_flops_per_token=self.flops_per_token,
            attention_convention=self.attention_convention, precision=self.precision,
            peak_flops_per_s=self._peak.flops_per_s, peak_source=self._peak.source,
            variant_precision=self.precision, variant_peak_flops_per_s=self._peak.flops_per_s,
            variant_peak_source=self._peak.source, ceiling_flops_per_s=self._ceiling,
            ceiling_reason=self._ceiling_reason, idle_reason=IDLE_REASON, flags=self._flags,
            energy=Energy.from_reading(reading, self.meter_reason), device_key=self.device_key,
            power_traces=tuple((d.device, d.power_trace) for d in reading.devices
                               if d.power_trace) if reading else ())
        self._steps = self._tokens = 0
        self._closed += 1
        node = self.recorder.record(window)
        if node is not None:
            self.windows.append(node)
            self._report(node)
        if reopen:
            self._open_window()
        return node

    def _report(self, node: dict) -> None:
        est = " (estimated)" if node["energy_estimated"] else ""
        eta = f"{node['eta_flops_per_j']:.3g} FLOP/J{est}" if node["eta_flops_per_j"] else "n/a"
        mfu = f"{100 * node['mfu']:.1f}%" if node["mfu"] is not None else "n/a"
        power = f"{node['avg_power_w']:.0f} W{est}" if node["avg_power_w"] is not None else "n/a"
        first = (f"; precision {self.variant} ({self.precision_source}), "
                 f"{self.flops_per_token:.4g} FLOPs/token ({self.flops_source}); "
                 f"after {self.warmup_steps} warm-up steps, not timed"
                 if node["window"] == 0 else "")
        self._print(f"etameter: window {node['window']}: {node['tokens_per_s']:.4g} tokens/s, "
                    f"MFU {mfu} (dense {self.precision} peak), {power}, eta {eta} "
                    f"[{node['energy_method'] or 'n/a'}]{first}")
        if self.tb is not None:
            for key in ("tokens_per_s", "mfu", "avg_power_w", "eta_flops_per_j"):
                if node[key] is not None:
                    self.tb.add_scalar(f"etameter/{key}", node[key], node["window"])

    def _print(self, text: str) -> None:
        if self.printer is not None and self.rank == 0:
            self.printer(text)

    # -- the end ------------------------------------------------------------------------------

    def close(self, status: str = "ok", error: str | None = None) -> dict:
        """Close the last (partial) window if it has steps, and the run. Returns the summary."""
        check_close(self)
        if self._steps and status == "ok":
            self._close_window(reopen=False)
        elif self.meter is not None and self._window_open:
            self.meter.stop(time.perf_counter() - self._t0)
        if self.meter is not None:
            self.meter.close()
        if self.metrics is not None:
            self.metrics.close()
        summary = {}
        if self.rank == 0:
            try:
                summary = self.summary()
            except Exception as e:
                status, error = "failed", f"the summary failed: {type(e).__name__}: {e}"
                raise
            finally:  # whatever happens, the run is never left `running`
                if self.store is not None:
                    if summary:
                        self.store.set_run_summary(self.run_id, summary, None)
                    self.store.finish_run(self.run_id, status, error)
            if self.tb is not None:
                self.tb.close()
        return summary

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: the run is finished and takes no more steps."""
        return self._finished

    def summary(self) -> dict:
        """The run's summary over the closed node windows (rank 0): the same summary as a
        bench run's, plus where the FLOPs per token came from."""
        return {**summarise(self.windows, NOISY_ADVICE), "flops_per_token": self.flops_per_token,
                "warmup_steps": self.warmup_steps,
                "flops_source": self.flops_source, "flops_warning": self.flops_warning,
                "precision_source": self.precision_source}

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._finished:
            return
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, or a stop signal turned
            # into one by profiler.lifecycle.stop_signals_interrupt around the user's loop
            self.close("interrupted", interrupt_reason(exc))
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")
