"""Commands that run or describe the workload: bench, overhead, flops, mfu, presets."""

from __future__ import annotations

import sys

import click

from harness.cli.options import (COUNT, POSITIVE, SECONDS, TFLOPS, WATTS, Number,
                                 db_option, echo_lines, emit_json, json_option, profile_option,
                                 progress_display, progress_option, translate_errors)

#: Whole numbers that may be zero (warm-up steps, the seed).
NATURAL = Number(0, integer=True)


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
@click.option("--batch", "batch_size", type=COUNT, default=None, help="Batch size (default: the preset's).")
@click.option("--seq", "seq_len", type=COUNT, default=None,
              help="Sequence length, or the context length for decode (default: the preset's).")
@click.option("--new-tokens", type=COUNT, default=16, show_default=True,
              help="decode: tokens generated per sequence in one step.")
@click.option("--steps", type=COUNT, default=None,
              help="Timed steps per window (default: enough to fill --window-s).")
@click.option("--trials", type=COUNT, default=3, show_default=True, help="Timed windows per variant.")
@click.option("--warmup", "warmup_steps", type=NATURAL, default=2, show_default=True,
              help="Warm-up steps after the first (compile) step, excluded from timing.")
@click.option("--window-s", "target_window_s", type=Number(0, 1e5, min_open=True),
              default=10.0, show_default=True,
              help="Target length of all timed windows together when --steps is not given.")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True,
              help="Attention FLOP convention: full (PaLM) or causal (half).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run.")
@click.option("--seed", type=NATURAL, default=0, show_default=True, help="Seed for weights and data.")
@click.option("--cpu-tdp-w", type=WATTS, default=None,
              help="Full-load power of this machine's CPU cores (W), for the estimated CPU meter.")
@click.option("--idle-s", type=SECONDS, default=0.0, show_default=True,
              help="Measure idle power for this long before the run, for net-of-idle energy.")
@click.option("--cooldown-s", type=SECONDS, default=0.0, show_default=True,
              help="Wait this long before the idle measurement.")
@click.option("--no-quality", "quality", is_flag=True, default=True, flag_value=False,
              help="Skip the quality guard against the fp32 reference.")
@click.option("--max-rel-err", type=POSITIVE, default=0.05, show_default=True,
              help="Quality: largest relative logit error allowed (inference).")
@click.option("--min-top1", type=Number(0, 1), default=0.9, show_default=True,
              help="Quality: smallest top-1 agreement allowed (inference).")
@click.option("--max-loss-dev", type=POSITIVE, default=0.05, show_default=True,
              help="Quality: largest relative loss deviation allowed (training).")
@click.option("--model", "model_file", type=click.Path(dir_okay=False), default=None,
              help="Your model's shape instead of --preset: a Hugging Face config.json or an "
                   "etameter TOML (see docs/models.md).")
@click.option("--layers", type=COUNT, default=None,
              help="Run only the first N layers of the model at full width (a slice).")
@click.option("--nproc", type=Number(1, 1024, integer=True), default=None,
              help="Node benchmark: train with DDP in N processes under torchrun (one per GPU, "
                   "or CPU processes with gloo); rank 0 stores the node-level result.")
@click.option("--nnodes", type=Number(1, 100000, integer=True), default=None,
              help="Cluster benchmark: M nodes (launch the same command on each) under "
                   "torchrun's c10d rendezvous; node 0 stores cluster, node and rank rows.")
@click.option("--node-rank", type=NATURAL, default=0, show_default=True,
              help="This node's rank, 0 to M-1 (node 0 records and stores the run).")
@click.option("--rdzv-endpoint", default=None, help="HOST:PORT of the rendezvous (node 0).")
@click.option("--rdzv-id", default=None, help="The job's rendezvous id, the same on every node.")
@click.option("--slurm", is_flag=True, default=False,
              help="Take --nnodes, --node-rank, --rdzv-id and --rdzv-endpoint from SLURM_* "
                   "variables (run under srun, one task per node).")
@click.option("--prometheus-port", default=None,
              help="Serve live Prometheus metrics on [ADDR:]PORT while it runs (PORT + local "
                   "rank under torchrun); needs prometheus-client. See docs/monitoring.md.")
@click.option("--pushgateway", default=None,
              help="Push live metrics to this Prometheus Pushgateway URL after every window.")
@profile_option
@db_option
@json_option
@progress_option
@translate_errors
def bench(db_path, as_json, show_progress, variants, max_rel_err, min_top1, max_loss_dev,
          slurm, **options):
    """Benchmark the reference model, or compare variants of it, and store the results."""
    from profiler.lifecycle import exit_code, stop_signals_interrupt

    if slurm:
        import os

        from harness.slurm import slurm_options

        given = click.get_current_context()
        options.update({k: v for k, v in slurm_options(os.environ).items()
                        if given.get_parameter_source(k) != click.core.ParameterSource.COMMANDLINE})
    state: dict = {"display": progress_display(show_progress, as_json)}
    try:  # Ctrl-C, SIGTERM or SIGHUP at any point, a lazy import included, ends and says so
        with stop_signals_interrupt():
            runs, scenario = _bench(db_path, variants, max_rel_err, min_top1, max_loss_dev,
                                    options, state)
    except KeyboardInterrupt as e:
        observer = state.get("observer")
        if observer is not None:
            observer.close()
        run_id = observer.run_id if observer is not None else None
        how = f" by {e.signal_name}" if getattr(e, "signal_name", None) else ""
        click.echo(f"interrupted{how}: " + (f"run {run_id} is recorded as 'interrupted' in "
                                            f"{db_path}" if run_id else "no run was started"),
                   err=True)
        sys.exit(exit_code(e))
    if options["node_rank"]:
        lines = [f"node {options['node_rank']} of {options['nnodes']}: its ranks are done; node 0 "
                 "stores the run (cluster, node and rank rows) in its --db"]
        emit_json({"node_rank": options["node_rank"], "runs": []}) if as_json else echo_lines(lines)
    elif as_json:
        from reports.documents import runs_document

        emit_json(runs_document(scenario, runs))
    elif len(runs) == 1:
        from reports.terminal import print_bench

        print_bench(runs[0])
    else:
        from reports.terminal import print_sweep

        print_sweep(runs)


def _bench(db_path, variants, max_rel_err, min_top1, max_loss_dev, options, state):
    """Check the configuration and the database (before any process is launched), then run
    the sweep; returns the runs and the scenario."""
    from harness.quality import Tolerance
    from harness.runner import BenchConfig, run_sweep
    from profiler.store import Store

    names = tuple(v.strip() for v in variants.split(",")) if variants else ()
    cfg = BenchConfig(**{**options, "profile_files": tuple(options["profile_files"])},
                      variants=names,
                      tolerance=Tolerance(max_rel_err=max_rel_err, min_top1=min_top1,
                                          max_loss_dev=max_loss_dev))
    from profiler.files import discard_if_new_and_empty

    with discard_if_new_and_empty(db_path):  # a refused plan leaves no new empty database
        store = Store(db_path)  # a bad --db is refused here, before ranks or workers start
        observer = state["observer"] = _ProgressObserver(state["display"])
        try:
            runs = run_sweep(cfg, store, observer, command=" ".join(["etameter", *sys.argv[1:]]))
        finally:
            observer.close()
    return runs, cfg.scenario


class _ProgressObserver:
    """Shows each run as it starts and, on stderr, progress bars with the time remaining:
    the variants of a sweep and the phases inside each (first step and compile, warm-up,
    timed windows), relayed from the worker processes."""

    def __init__(self, display):
        self.display = display
        self.run_id = None
        self._started = False

    def started(self, run_id: str, config: dict) -> None:
        self.run_id = run_id
        device = config["device"]
        if not self._started:
            self._started = True
            self.display.note(
                f"etameter bench: preset {config['preset']} ({config['preset_reason']}); "
                f"{config['scenario']}, batch {config['batch_size']} "
                f"({config.get('batch_reason')}) x seq {config['seq_len']} "
                f"({config.get('seq_len_reason')})"
                + (f" per rank, {config['world_size']} ranks"
                   if (config.get("world_size") or 1) > 1 else "")
                + f", on {device['name']} ({device['type']})")
            self.display.start()
        self.display.restart(keep=("variants",))
        self.display.note(f"variant {config['variant']['name']}: run {run_id[:8]}")

    def progress(self, phase: str, done: int, total: int) -> None:
        self.display(phase, done, total)

    def close(self) -> None:
        self.display.close()


@click.command()
@click.option("--preset", default=None, help="Model preset (default: the device's default).")
@click.option("--repeats", type=COUNT, default=5, show_default=True,
              help="Pairs of windows (one metered, one not), interleaved.")
@click.option("--steps", type=COUNT, default=5, show_default=True, help="Steps per window.")
@click.option("--warmup", "warmup_steps", type=NATURAL, default=2, show_default=True,
              help="Warm-up steps before the first pair.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run.")
@click.option("--cpu-tdp-w", type=WATTS, default=None,
              help="Full-load power of the CPU cores (W) for the estimate meter.")
@profile_option
@json_option
@progress_option
@translate_errors
def overhead(as_json, show_progress, profile_files, **options):
    """Measure how much metering adds to the step time (interleaved pairs), with a verdict:
    within target, over target, or inconclusive at this noise."""
    from harness.overhead import OverheadConfig, measure_overhead
    from reports.text import overhead_lines

    cfg = OverheadConfig(**options, profile_files=tuple(profile_files))
    with progress_display(show_progress, as_json) as display:
        result = measure_overhead(cfg, progress=display)
    if as_json:
        emit_json(result)
    else:
        echo_lines(overhead_lines(result))


@click.command()
@click.option("--preset", default=None, help="Model preset (see `etameter presets`).")
@click.option("--model", "model_file", type=click.Path(dir_okay=False), default=None,
              help="Or: a Hugging Face config.json or etameter TOML.")
@click.option("--layers", type=COUNT, default=None,
              help="The first N layers only; the whole model's figure is stated beside.")
@click.option("--scenario", type=click.Choice(["train", "prefill", "decode"]), default="train",
              show_default=True, help="train (3x forward), prefill (forward), or decode.")
@click.option("--batch", "batch_size", type=COUNT, default=None, help="Batch size (default: the preset's).")
@click.option("--seq", "seq_len", type=COUNT, default=None,
              help="Sequence length, or the cached context for decode (default: the preset's).")
@click.option("--new-tokens", type=COUNT, default=16, show_default=True,
              help="Decode: tokens generated per sequence after the cached context (as bench).")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True, help="Attention FLOP convention.")
@json_option
@translate_errors
def flops(preset, model_file, layers, scenario, batch_size, seq_len, new_tokens,
          attention_convention, as_json):
    """Logical FLOPs of a model: per token and per step, by component."""
    from harness.presets import choose_model
    from profiler.flops import logical_flops
    from reports.documents import flops_document
    from reports.text import flops_lines

    p = choose_model(preset, model_file, layers)
    preset = p.name
    from harness.plan import BenchConfig, default_seq_len

    batch_reason = (p.batch_reason or f"the {p.name} preset's batch size") \
        if batch_size is None else "chosen with --batch"
    batch_size = p.batch_size if batch_size is None else batch_size
    # The same sizes bench would run: decode's default context leaves room for the new tokens.
    seq_len, seq_reason = default_seq_len(BenchConfig(scenario=scenario, seq_len=seq_len,
                                                      new_tokens=new_tokens), p)
    result = logical_flops(p.model.shape(), scenario, batch_size=batch_size, seq_len=seq_len,
                           convention=attention_convention, new_tokens=new_tokens)
    doc = flops_document(preset, batch_size, seq_len, result)
    doc["differences"] = list(p.differences)
    doc.update(batch_reason=batch_reason, seq_len_reason=seq_reason)
    if p.full_layers:
        whole = logical_flops(p.whole_model.shape(), scenario, batch_size=batch_size,
                              seq_len=seq_len, convention=attention_convention,
                              new_tokens=new_tokens)
        doc["whole_model"] = {"n_layers": p.full_layers,
                              "logical_flops_per_token": whole.flops_per_token,
                              "logical_flops_per_step": whole.flops_per_step}
    if as_json:
        emit_json(doc)
    else:
        echo_lines(flops_lines(doc, scenario, attention_convention, result))


@click.command()
@click.option("--params", "n_params", type=POSITIVE, default=None,
              help="N, the parameter count used in 6N (with --layers, --heads, --head-dim).")
@click.option("--layers", "n_layers", type=COUNT, default=None, help="L, the number of layers.")
@click.option("--heads", "n_heads", type=COUNT, default=None, help="H, the query heads.")
@click.option("--head-dim", type=COUNT, default=None,
              help="Q, the head dimension (shape mode default: d/H; PaLM needs 256).")
@click.option("--hidden", "d_model", type=COUNT, default=None,
              help="d, the model width: give the shape instead of --params.")
@click.option("--vocab", "vocab_size", type=COUNT, default=None, help="V, the vocabulary (shape mode).")
@click.option("--ffn", "ffn_hidden", type=COUNT, default=None, help="f, the MLP width (default 4d).")
@click.option("--kv-heads", "n_kv_heads", type=COUNT, default=None, help="G, key/value heads (shape mode).")
@click.option("--mlp", type=click.Choice(["gelu", "swiglu"]), default="gelu", show_default=True,
              help="MLP kind (shape mode).")
@click.option("--preset", default=None, help="Take the model from a preset instead.")
@click.option("--model", "model_file", type=click.Path(dir_okay=False), default=None,
              help="Or from a Hugging Face config.json or etameter TOML.")
@click.option("--seq", "seq_len", type=COUNT, required=True, help="T, the training sequence length.")
@click.option("--tokens-per-s", type=POSITIVE, default=None, help="Throughput of the whole job.")
@click.option("--tokens-per-step", type=POSITIVE, default=None,
              help="With --step-time-s, instead of --tokens-per-s.")
@click.option("--step-time-s", type=POSITIVE, default=None, help="Seconds per step.")
@click.option("--devices", type=COUNT, default=1, show_default=True, help="n, devices in the job.")
@click.option("--peak-tflops", type=TFLOPS, default=None, help="Dense peak per device, TFLOP/s.")
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
def mfu(preset, model_file, seq_len, tokens_per_s, tokens_per_step, step_time_s, devices,
        peak_tflops, device_name, precision, scenario, attention_convention, profile_files,
        as_json, **model):
    """MFU of a reported run from its model, throughput and hardware."""
    from profiler.mfu_calculator import (check_plausible, compute_mfu, model_spec, peak_flops,
                                         throughput)
    from reports.text import mfu_lines

    shape = None
    if preset is not None or model_file is not None:
        from harness.presets import choose_model

        shape = choose_model(preset, model_file).model.shape()
    spec = model_spec(**model, preset_shape=shape)
    tokens_per_s = throughput(tokens_per_s, tokens_per_step, step_time_s)
    peak, source = peak_flops(peak_tflops, device_name, precision, profile_files)
    doc = check_plausible(compute_mfu(spec, seq_len=seq_len, tokens_per_s=tokens_per_s,
                                      devices=devices, peak_flops_per_s=peak, peak_source=source,
                                      scenario=scenario, convention=attention_convention)).to_dict()
    if model["d_model"] is not None and model["head_dim"] is None:
        doc["head_dim_note"] = (f"head dim assumed d/H = {doc['attention_width'] // (model['n_heads'] or 1)}"
                                "; give --head-dim when the model's differs (PaLM: 256)")
    if as_json:
        emit_json(doc)
    else:
        echo_lines(mfu_lines(doc))


@click.command()
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True,
              help="Estimate memory in the default precisions of this device (auto: a GPU if "
                   "torch sees one, else the CPU).")
@json_option
def presets(device, as_json):
    """List the presets and shipped open-model shapes: parameters, logical FLOPs per token,
    and the memory a training and a decode step need at their default sizes (estimated, in
    the precisions a run on the device takes by default)."""
    import torch

    from harness.catalog import catalog
    from harness.presets import PRESETS
    from reports.text import presets_lines

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    docs = catalog(PRESETS.values(), device)
    if as_json:
        emit_json({"presets": docs})
    else:
        echo_lines(presets_lines(docs))


COMMANDS = (bench, overhead, flops, mfu, presets)
