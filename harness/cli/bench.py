"""Commands that run or describe the workload: bench, overhead, flops, mfu, presets."""

from __future__ import annotations

import sys

import click

from harness.cli.options import (db_option, echo_lines, emit_json, json_option, profile_option,
                                 stderr_console, translate_errors)


@click.command()
@click.option("--preset", default=None,
              help="Model preset (default: chosen for the device; see `etameter presets`).")
@click.option("--scenario", default="train", show_default=True,
              type=click.Choice(["train", "prefill", "decode"]),
              help="train: forward + backward + AdamW; prefill: forward over the sequence; "
                   "decode: new tokens with a static KV cache after --seq tokens of context.")
@click.option("--variants", default=None,
              help="Comma-separated variants, e.g. bf16,bf16+compile,fp8; the first is the "
                   "reference of the comparison (default: the device's precision).")
@click.option("--batch", "batch_size", type=int, default=None, help="Batch size (default: the preset's).")
@click.option("--seq", "seq_len", type=int, default=None,
              help="Sequence length, or the context length for decode (default: the preset's).")
@click.option("--new-tokens", type=int, default=16, show_default=True,
              help="decode: tokens generated per sequence in one step.")
@click.option("--steps", type=int, default=None,
              help="Timed steps per window (default: enough to fill --window-s).")
@click.option("--trials", type=int, default=3, show_default=True, help="Timed windows per variant.")
@click.option("--warmup", "warmup_steps", type=int, default=2, show_default=True,
              help="Warm-up steps after the first (compile) step, excluded from timing.")
@click.option("--window-s", "target_window_s", type=float, default=10.0, show_default=True,
              help="Target length of all timed windows together when --steps is not given.")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True,
              help="Attention FLOP convention: full (PaLM) or causal (half).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights and data.")
@click.option("--cpu-tdp-w", type=float, default=None,
              help="Full-load power of this machine's CPU cores (W), for the estimated CPU meter.")
@click.option("--idle-s", type=float, default=0.0, show_default=True,
              help="Measure idle power for this long before the run, for net-of-idle energy.")
@click.option("--cooldown-s", type=float, default=0.0, show_default=True,
              help="Wait this long before the idle measurement.")
@click.option("--no-quality", "quality", is_flag=True, default=True, flag_value=False,
              help="Skip the quality guard against the fp32 reference.")
@click.option("--max-rel-err", type=float, default=0.05, show_default=True,
              help="Quality: largest relative logit error allowed (inference).")
@click.option("--min-top1", type=float, default=0.9, show_default=True,
              help="Quality: smallest top-1 agreement allowed (inference).")
@click.option("--max-loss-dev", type=float, default=0.05, show_default=True,
              help="Quality: largest relative loss deviation allowed (training).")
@click.option("--nproc", type=int, default=None,
              help="Node benchmark: train with DDP in N processes under torchrun (one per GPU, "
                   "or CPU processes with gloo); rank 0 stores the node-level result.")
@profile_option
@db_option
@json_option
@translate_errors
def bench(db_path, as_json, variants, max_rel_err, min_top1, max_loss_dev, **options):
    """Benchmark the reference model, or compare variants of it, and store the results."""
    from harness.quality import Tolerance
    from harness.runner import BenchConfig, run_sweep
    from profiler.store import Store
    from reports.documents import runs_document
    from reports.terminal import print_bench, print_sweep

    names = tuple(v.strip() for v in variants.split(",")) if variants else ()
    cfg = BenchConfig(**{**options, "profile_files": tuple(options["profile_files"])},
                      variants=names,
                      tolerance=Tolerance(max_rel_err=max_rel_err, min_top1=min_top1,
                                          max_loss_dev=max_loss_dev))
    store = Store(db_path)
    console = stderr_console()
    observer = _ProgressObserver(console)
    try:
        runs = run_sweep(cfg, store, observer, command=" ".join(["etameter", *sys.argv[1:]]))
    except KeyboardInterrupt:
        observer.close()
        console.print(f"[yellow]interrupted: run {observer.run_id or '?'} is recorded as "
                      f"'interrupted' in {db_path}[/yellow]")
        sys.exit(130)
    finally:
        observer.close()
    if as_json:
        emit_json(runs_document(cfg.scenario, runs))
    elif len(runs) == 1:
        print_bench(runs[0])
    else:
        print_sweep(runs)


class _ProgressObserver:
    """Shows each run as it starts and a progress bar on stderr."""

    def __init__(self, console):
        self.console = console
        self.run_id = None
        self._progress = None
        self._tasks = {}

    def started(self, run_id: str, config: dict) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
        from rich.text import Text

        self.run_id = run_id
        device = config["device"]
        if self._progress is None:
            self.console.print(Text(
                f"etameter bench: preset {config['preset']} ({config['preset_reason']}); "
                f"{config['scenario']}, {config['batch_size']}x{config['seq_len']} tokens, on "
                f"{device['name']} ({device['type']})"))
            self._progress = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=self.console, transient=False)
            self._progress.start()
        self._progress.console.print(Text(f"variant {config['variant']['name']}: run {run_id[:8]}"))

    def progress(self, phase: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@click.command()
@click.option("--preset", default=None, help="Model preset (default: the device's default).")
@click.option("--repeats", type=int, default=5, show_default=True,
              help="Pairs of windows (one metered, one not), interleaved.")
@click.option("--steps", type=int, default=5, show_default=True, help="Steps per window.")
@click.option("--warmup", "warmup_steps", type=int, default=2, show_default=True,
              help="Warm-up steps before the first pair.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run.")
@click.option("--cpu-tdp-w", type=float, default=None,
              help="Full-load power of the CPU cores (W) for the estimate meter.")
@json_option
@translate_errors
def overhead(as_json, **options):
    """Measure how much metering adds to the step time (median of interleaved pairs)."""
    from harness.overhead import OverheadConfig, measure_overhead
    from reports.text import overhead_lines

    console = stderr_console()
    result = measure_overhead(OverheadConfig(**options), progress=lambda phase, done, total:
                              console.print(f"{phase} {done}/{total}", highlight=False))
    if as_json:
        emit_json(result)
    else:
        echo_lines(overhead_lines(result))


@click.command()
@click.option("--preset", required=True, help="Model preset (see `etameter presets`).")
@click.option("--scenario", type=click.Choice(["train", "prefill", "decode"]), default="train",
              show_default=True, help="train (3x forward), prefill (forward), or decode.")
@click.option("--batch", "batch_size", type=int, default=None, help="Batch size (default: the preset's).")
@click.option("--seq", "seq_len", type=int, default=None,
              help="Sequence length, or the cached context for decode (default: the preset's).")
@click.option("--new-tokens", type=int, default=1, show_default=True,
              help="Decode: tokens generated per sequence after the cached context.")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True, help="Attention FLOP convention.")
@json_option
@translate_errors
def flops(preset, scenario, batch_size, seq_len, new_tokens, attention_convention, as_json):
    """Logical FLOPs of a preset: per token and per step, by component."""
    from harness.presets import get_preset
    from profiler.flops import logical_flops
    from reports.documents import flops_document
    from reports.text import flops_lines

    p = get_preset(preset)
    batch_size, seq_len = batch_size or p.batch_size, seq_len or p.seq_len
    result = logical_flops(p.model.shape(), scenario, batch_size=batch_size, seq_len=seq_len,
                           convention=attention_convention, new_tokens=new_tokens)
    doc = flops_document(preset, batch_size, seq_len, result)
    if as_json:
        emit_json(doc)
    else:
        echo_lines(flops_lines(doc, scenario, attention_convention, result))


@click.command()
@click.option("--params", "n_params", type=float, default=None,
              help="N, the parameter count used in 6N (with --layers, --heads, --head-dim).")
@click.option("--layers", "n_layers", type=int, default=None, help="L, the number of layers.")
@click.option("--heads", "n_heads", type=int, default=None, help="H, the query heads.")
@click.option("--head-dim", type=int, default=None, help="Q, the head dimension.")
@click.option("--hidden", "d_model", type=int, default=None,
              help="d, the model width: give the shape instead of --params.")
@click.option("--vocab", "vocab_size", type=int, default=None, help="V, the vocabulary (shape mode).")
@click.option("--ffn", "ffn_hidden", type=int, default=None, help="f, the MLP width (default 4d).")
@click.option("--kv-heads", "n_kv_heads", type=int, default=None, help="G, key/value heads (shape mode).")
@click.option("--mlp", type=click.Choice(["gelu", "swiglu"]), default="gelu", show_default=True,
              help="MLP kind (shape mode).")
@click.option("--preset", default=None, help="Take the model from a preset instead.")
@click.option("--seq", "seq_len", type=int, required=True, help="T, the training sequence length.")
@click.option("--tokens-per-s", type=float, default=None, help="Throughput of the whole job.")
@click.option("--tokens-per-step", type=float, default=None,
              help="With --step-time-s, instead of --tokens-per-s.")
@click.option("--step-time-s", type=float, default=None, help="Seconds per step.")
@click.option("--devices", type=int, default=1, show_default=True, help="n, devices in the job.")
@click.option("--peak-tflops", type=float, default=None, help="Dense peak per device, TFLOP/s.")
@click.option("--device", "device_name", default=None,
              help="Look the peak up in the hardware profiles (id or name).")
@click.option("--precision", default="bf16", show_default=True,
              help="Precision whose peak --device looks up.")
@click.option("--scenario", type=click.Choice(["train", "prefill"]), default="train",
              show_default=True, help="train: 6N + 12LHQT; prefill: 2N + 4LHQT.")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True, help="Attention FLOP convention.")
@profile_option
@json_option
@translate_errors
def mfu(preset, seq_len, tokens_per_s, tokens_per_step, step_time_s, devices, peak_tflops,
        device_name, precision, scenario, attention_convention, profile_files, as_json, **model):
    """MFU of a reported run from its model, throughput and hardware."""
    from profiler.mfu_calculator import compute_mfu, model_spec, peak_flops, throughput
    from reports.text import mfu_lines

    shape = None
    if preset is not None:
        from harness.presets import get_preset

        shape = get_preset(preset).model.shape()
    spec = model_spec(**model, preset_shape=shape)
    tokens_per_s = throughput(tokens_per_s, tokens_per_step, step_time_s)
    peak, source = peak_flops(peak_tflops, device_name, precision, profile_files)
    doc = compute_mfu(spec, seq_len=seq_len, tokens_per_s=tokens_per_s, devices=devices,
                      peak_flops_per_s=peak, peak_source=source, scenario=scenario,
                      convention=attention_convention).to_dict()
    if as_json:
        emit_json(doc)
    else:
        echo_lines(mfu_lines(doc))


@click.command()
@json_option
def presets(as_json):
    """List the model presets."""
    from harness.presets import PRESETS
    from reports.documents import presets_document
    from reports.text import presets_lines

    docs = presets_document(PRESETS.values())
    if as_json:
        emit_json({"presets": docs})
    else:
        echo_lines(presets_lines(docs))


COMMANDS = (bench, overhead, flops, mfu, presets)
