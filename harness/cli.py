"""The ``etameter`` command line: a thin layer over the library.

Commands that report numbers take ``--json`` and then print exactly one JSON document on
stdout; progress and logs go to stderr. Library errors become one-line messages.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from profiler.errors import EtameterError
from profiler.store import DEFAULT_DB, ENV_DB

db_option = click.option(
    "--db", "db_path", default=DEFAULT_DB, envvar=ENV_DB, show_default=True,
    type=click.Path(dir_okay=False), help=f"Result database (or set {ENV_DB}).",
)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of a table.")
profile_option = click.option(
    "--profile", "profile_files", multiple=True, type=click.Path(dir_okay=False),
    help="Extra hardware profile file (TOML); repeatable. Also read: $ETAMETER_PROFILES or "
         "~/.config/etameter/profiles/*.toml.")


def translate_errors(fn):
    """Turn etameter's typed errors into click errors (exit 1, a one-line message)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EtameterError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def emit_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=False, default=str))


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="etameter")
def cli():
    """etameter: how efficiently does this machine turn joules into model work?

    Measures time, throughput and energy of a dense reference transformer and reports logical
    FLOPs, MFU and eta (logical FLOPs per joule). Results are stored in SQLite.
    """


@cli.command()
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

    nproc = options.pop("nproc")
    if nproc is not None:
        _bench_nproc(nproc, options, variants, db_path, as_json)
        return
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
    from reports.bench_view import print_bench, print_sweep

    if len(runs) == 1:
        if as_json:
            emit_json(bench_document(runs[0]))
        else:
            print_bench(runs[0])
        return
    if as_json:
        from reports.compare import comparison

        emit_json({"scenario": cfg.scenario, "preset": runs[0]["preset"],
                   "reference_variant": runs[0]["variant"],
                   "runs": [bench_document(r) for r in runs], "comparison": comparison(runs)})
    else:
        print_sweep(runs)


def _bench_nproc(nproc: int, options: dict, variants, db_path: str, as_json: bool) -> None:
    """Run harness.dist_bench under torchrun and show rank 0's node-level result."""
    import subprocess

    from harness.dist_bench import RESULT_PREFIX
    from profiler.errors import ConfigError

    if nproc <= 0:
        raise ConfigError(f"--nproc must be positive, got {nproc}")
    if variants or options["scenario"] != "train":
        raise ConfigError("--nproc runs the train scenario of the default precision; "
                          "drop --variants and --scenario")
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "harness.dist_bench", "--db", db_path,
            "--preset", options["preset"] or "tiny", "--device", options["device"],
            "--windows", str(options["trials"]), "--warmup", str(options["warmup_steps"]),
            "--steps", str(options["steps"] or 10), "--seed", str(options["seed"])]
    for flag, key in (("--batch", "batch_size"), ("--seq", "seq_len"), ("--cpu-tdp-w", "cpu_tdp_w")):
        if options[key] is not None:
            args += [flag, str(options[key])]
    proc = subprocess.run(args, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise ConfigError(f"the torchrun node benchmark failed (exit code {proc.returncode}); "
                          "its ranks' output is above")
    doc = json.loads(lines[-1][len(RESULT_PREFIX):])
    if as_json:
        emit_json(doc)
        return
    from reports.format import estimated, pct, si

    s = doc["summary"]
    est = s["energy_estimated"]
    click.echo(f"node benchmark: {doc['world_size']} ranks, {doc['preset']}, "
               f"{doc['batch_per_rank']}x{doc['seq_len']} tokens per rank, run {doc['run_id']}")
    click.echo(f"  tokens/s {si(s['tokens_per_s'])}, MFU {pct(s['mfu'])}, "
               f"power {estimated(si(s['avg_power_w'], 'W'), est)}, "
               f"eta {estimated(si(s['eta_flops_per_j'], 'FLOP/J'), est)} [{s['energy_method']}]")


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


def bench_document(run: dict) -> dict:
    """The JSON document of one run: its identity, its summary keys flat, then the windows."""
    config = run["config"]
    summary = dict(run.get("summary") or {})
    windows = []
    for r in run.get("results") or []:
        r = dict(r)
        r.pop("run_id", None)
        windows.append(r)
    return {
        "run_id": run["id"], "status": run["status"], "reason": run.get("error"),
        "scenario": run["scenario"], "variant": run["variant"],
        "preset": run["preset"], "preset_reason": config.get("preset_reason"),
        "batch_size": config.get("batch_size"), "seq_len": config.get("seq_len"),
        "device": config.get("device"), **summary, "quality_ok": run.get("quality_ok"),
        "windows": windows, "meter": config.get("meter"),
        "meters_tried": config.get("meters_tried"), "environment": run["environment"],
    }


def filter_options(fn):
    """The run filters shared by report, compare, plot and export."""
    for option in reversed((
        click.option("--status", type=click.Choice(["running", "ok", "skipped", "failed", "interrupted"]),
                     default=None, help="Only runs with this status."),
        click.option("--preset", default=None, help="Only runs of this preset."),
        click.option("--scenario", type=click.Choice(["train", "prefill", "decode"]), default=None,
                     help="Only runs of this scenario."),
        click.option("--variant", default=None, help="Only runs of this variant (canonical name)."),
        click.option("--device", "device_filter", default=None,
                     help="Only runs whose device name or key contains this text."),
        click.option("--since", default=None, help="Only runs started at or after this ISO date/time."),
        click.option("--until", default=None, help="Only runs started before this ISO date/time "
                                                   "(a date includes that whole day)."),
    )):
        fn = option(fn)
    return fn


def _filtered_runs(store, status, preset, scenario, variant, device_filter, since, until):
    return store.runs(status, preset=preset, scenario=scenario, variant=variant,
                      device=device_filter, since=since, until=until)


@cli.command()
@filter_options
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json", "html"]),
              default="table", show_default=True, help="Output format (on stdout).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML page (tables and plots) to this file.")
@db_option
@json_option
@translate_errors
def report(db_path, as_json, fmt, html_file, **filters):
    """List the stored runs: one row per run (medians over its windows)."""
    from profiler.store import Store

    store = Store(db_path)
    runs = _filtered_runs(store, **filters)
    fmt = "json" if as_json else fmt
    if html_file or fmt == "html":
        from reports.html import html_report

        page = html_report(runs, store)
        if html_file:
            with open(html_file, "w") as f:
                f.write(page)
            click.echo(f"wrote {html_file}", err=True)
        if fmt == "html":
            click.echo(page)
            return
    if fmt == "json":
        from reports.formats import json_text

        click.echo(json_text(runs, db_path))
    elif fmt == "markdown":
        from reports.formats import markdown

        click.echo(markdown(runs), nl=False)
    elif fmt == "csv":
        from reports.formats import csv_text

        click.echo(csv_text(runs), nl=False)
    else:
        _print_table(runs, db_path)


def _print_table(runs, db_path) -> None:
    from reports.console import print_table
    from reports.table import COLUMNS, run_rows

    rows, notes = run_rows(runs)
    print_table(f"etameter runs in {db_path}", COLUMNS, rows, notes)


@cli.command()
@click.option("--baseline", required=True, help="The variant the others are compared with.")
@filter_options
@db_option
@json_option
@translate_errors
def compare(baseline, db_path, as_json, **filters):
    """Each variant against a baseline variant on the same preset, scenario and device."""
    from profiler.errors import ConfigError
    from profiler.store import Store
    from reports.compare import comparison, groups

    store = Store(db_path)
    runs = _filtered_runs(store, **filters)
    out = []
    for key, members in groups(runs).items():
        latest: dict[str, dict] = {}
        for r in members:  # oldest first: the last one of each variant wins
            latest[r["variant"]] = r
        if baseline not in latest:
            continue
        ordered = [latest[baseline]] + [r for v, r in latest.items() if v != baseline]
        preset, scenario, device, batch, seq, convention = key
        out.append({"preset": preset, "scenario": scenario, "device": device,
                    "batch_size": batch, "seq_len": seq, "attention_convention": convention,
                    "baseline_run": latest[baseline]["id"], "rows": comparison(ordered)})
    if not out:
        variants = sorted({r["variant"] for r in runs})
        raise ConfigError(f"no runs of baseline variant {baseline!r} among the selected runs "
                          f"(variants there: {', '.join(variants) or 'none'})")
    if as_json:
        emit_json({"baseline": baseline, "groups": out})
        return
    from reports.compare import COLUMNS, comparison_cells
    from reports.console import print_table

    for group in out:
        cells, notes = comparison_cells(group["rows"])
        print_table(f"{group['scenario']} on {group['preset']} ({group['batch_size']}x"
                    f"{group['seq_len']}, {group['device']}), against {baseline}",
                    COLUMNS, cells, notes)


@cli.command()
@click.argument("kind", type=click.Choice(["variants", "power", "throughput"]))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Output file, .png or .svg.")
@click.option("--run", "run_id", default=None, help="power: the run to plot (id or prefix).")
@click.option("--against", type=click.Choice(["batch_size", "seq_len"]), default="batch_size",
              show_default=True, help="throughput: the swept quantity.")
@filter_options
@db_option
@translate_errors
def plot(kind, out_file, run_id, against, db_path, **filters):
    """Plot eta and MFU by variant, a run's power timeline, or throughput against a sweep."""
    from profiler.errors import ConfigError
    from profiler.store import Store
    from reports import plots

    store = Store(db_path)
    if kind == "power":
        if not run_id:
            raise ConfigError("plot power needs --run ID")
        run = store.find_run(run_id)
        fig = plots.power_figure(run, store.power_samples(run["id"]))
    else:
        runs = _filtered_runs(store, **filters)
        fig = (plots.variants_figure(runs) if kind == "variants"
               else plots.throughput_figure(runs, against))
    click.echo(f"wrote {plots.save(fig, out_file)}", err=True)


@cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "parquet"]), default=None,
              help="Default: from the file suffix.")
@filter_options
@db_option
@json_option
@translate_errors
def export_cmd(path, fmt, db_path, as_json, **filters):
    """Write the selected runs to a JSON, CSV or Parquet file."""
    from profiler.store import Store
    from reports.export import export_runs

    store = Store(db_path)
    counts = export_runs(store, _filtered_runs(store, **filters), path, fmt)
    if as_json:
        emit_json({"path": path, **counts})
    else:
        click.echo(f"wrote {counts['runs']} runs ({counts['results']} results) to {path}")


@cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "parquet"]), default=None,
              help="Default: from the file suffix.")
@db_option
@json_option
@translate_errors
def import_cmd(path, fmt, db_path, as_json):
    """Add the runs of an export file to the database (runs already there are skipped)."""
    from profiler.store import Store
    from reports.export import import_file

    counts = import_file(Store(db_path), path, fmt)
    if as_json:
        emit_json({"path": path, **counts})
    else:
        click.echo(f"imported {counts['runs']} runs ({counts['skipped_runs']} already present)")


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--into", required=True, type=click.Path(dir_okay=False),
              help="The database to merge into (created if missing).")
@json_option
@translate_errors
def merge(sources, into, as_json):
    """Bring the runs of several databases into one, without duplicates."""
    from reports.export import merge as merge_dbs

    totals = merge_dbs(list(sources), into)
    if as_json:
        emit_json({"into": into, **totals})
    else:
        click.echo(f"merged {totals.get('runs', 0)} runs into {into} "
                   f"({totals.get('skipped_runs', 0)} already present)")


@cli.command()
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

    p = get_preset(preset)
    result = logical_flops(p.model.shape(), scenario, batch_size=batch_size or p.batch_size,
                           seq_len=seq_len or p.seq_len, convention=attention_convention,
                           new_tokens=new_tokens)
    doc = {"preset": preset, "batch_size": batch_size or p.batch_size,
           "seq_len": seq_len or p.seq_len, **result.to_dict()}
    if as_json:
        emit_json(doc)
        return
    from reports.format import si

    click.echo(f"{preset} {scenario}: batch {doc['batch_size']} x seq {doc['seq_len']}, "
               f"attention convention {attention_convention}")
    click.echo(f"matmul parameters (active): {result.n_mm_active:,}")
    click.echo(f"{'component':<18}{'FLOPs/token':>16}{'FLOPs/step':>16}")
    for key, per_token in result.per_token.to_dict().items():
        per_step = result.per_step.to_dict()[key]
        click.echo(f"{key:<18}{si(per_token):>16}{si(per_step):>16}")
    for note in result.notes:
        click.echo(f"note: {note}")


@cli.command()
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
def mfu(n_params, n_layers, n_heads, head_dim, d_model, vocab_size, ffn_hidden, n_kv_heads, mlp,
        preset, seq_len, tokens_per_s, tokens_per_step, step_time_s, devices, peak_tflops,
        device_name, precision, scenario, attention_convention, profile_files, as_json):
    """MFU of a reported run from its model, throughput and hardware."""
    from profiler.errors import ConfigError
    from profiler.mfu_calculator import compute_mfu

    model = _mfu_model(n_params, n_layers, n_heads, head_dim, d_model, vocab_size, ffn_hidden,
                       n_kv_heads, mlp, preset)
    if (tokens_per_s is None) == (tokens_per_step is None or step_time_s is None):
        raise ConfigError("give the throughput as --tokens-per-s, or as --tokens-per-step "
                          "with --step-time-s (exactly one of the two)")
    if tokens_per_s is None:
        if step_time_s <= 0:
            raise ConfigError(f"--step-time-s must be positive, got {step_time_s}")
        tokens_per_s = tokens_per_step / step_time_s
    peak, source = _mfu_peak(peak_tflops, device_name, precision, profile_files)
    report = compute_mfu(model, seq_len=seq_len, tokens_per_s=tokens_per_s, devices=devices,
                         peak_flops_per_s=peak, peak_source=source, scenario=scenario,
                         convention=attention_convention)
    doc = report.to_dict()
    if as_json:
        emit_json(doc)
        return
    from reports.format import pct, si

    click.echo(f"FLOPs per token: {si(doc['flops_per_token'], 'FLOP')} "
               f"({si(doc['flops_per_token_without_attention'], 'FLOP')} without attention; "
               f"attention convention {attention_convention})")
    click.echo(f"achieved: {si(doc['flops_per_s'], 'FLOP/s')} over {devices} device(s) of "
               f"{si(peak, 'FLOP/s')} ({source})")
    click.echo(f"MFU: {pct(doc['mfu'])} ({pct(doc['mfu_without_attention'])} with 6N alone)"
               if scenario == "train" else
               f"MFU: {pct(doc['mfu'])} ({pct(doc['mfu_without_attention'])} with 2N alone)")


def _mfu_model(n_params, n_layers, n_heads, head_dim, d_model, vocab_size, ffn_hidden,
               n_kv_heads, mlp, preset):
    from profiler.errors import ConfigError
    from profiler.flops import ModelShape
    from profiler.mfu_calculator import ModelSpec

    modes = [n_params is not None, d_model is not None, preset is not None]
    if sum(modes) != 1:
        raise ConfigError("give the model exactly one way: --params N with --layers, --heads "
                          "and --head-dim; or the shape --layers, --hidden, --vocab; or --preset")
    if preset is not None:
        from harness.presets import get_preset

        return ModelSpec.from_shape(get_preset(preset).model.shape(), source="preset")
    if n_params is not None:
        missing = [n for n, v in (("--layers", n_layers), ("--heads", n_heads),
                                  ("--head-dim", head_dim)) if v is None]
        if missing:
            raise ConfigError(f"--params also needs {', '.join(missing)} for the attention term")
        return ModelSpec.from_params(n_params, n_layers, n_heads, head_dim)
    missing = [n for n, v in (("--layers", n_layers), ("--vocab", vocab_size)) if v is None]
    if missing:
        raise ConfigError(f"the shape mode also needs {', '.join(missing)}")
    heads = n_heads or (d_model // head_dim if head_dim else 1)
    return ModelSpec.from_shape(ModelShape(
        n_layers=n_layers, d_model=d_model, n_heads=heads, vocab_size=vocab_size,
        ffn_hidden=ffn_hidden or 4 * d_model, n_kv_heads=n_kv_heads, head_dim=head_dim, mlp=mlp))


def _mfu_peak(peak_tflops, device_name, precision, profile_files=()) -> tuple[float, str]:
    from profiler.errors import ConfigError

    if (peak_tflops is None) == (device_name is None):
        raise ConfigError("give the peak as --peak-tflops X or --device NAME (exactly one)")
    if peak_tflops is not None:
        if peak_tflops <= 0:
            raise ConfigError(f"--peak-tflops must be positive, got {peak_tflops}")
        return peak_tflops * 1e12, "--peak-tflops"
    from hardware_profiles.detect import find_device_profile
    from hardware_profiles.profiles import load_profiles

    profile = find_device_profile(device_name, load_profiles(profile_files))
    peak = profile.peak(precision)
    if peak is None:
        raise ConfigError(f"profile {profile.id} has no dense {precision} peak: choose another "
                          f"--precision ({', '.join(profile.peak_flops_per_s)})")
    return peak, f"{profile.id} dense {precision}: {profile.sources['peak_tflops']}"


@cli.command()
@click.option("--precision", "precisions", multiple=True,
              type=click.Choice(["fp32", "tf32", "bf16", "fp16", "fp8"]),
              help="Precision to measure (repeatable; default: every one the device runs).")
@click.option("--repeats", type=int, default=5, show_default=True, help="Timed trials per ceiling.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Which device to calibrate.")
@profile_option
@db_option
@json_option
@translate_errors
def calibrate(precisions, repeats, device, profile_files, db_path, as_json):
    """Measure the device's matmul FLOP/s per precision and copy bandwidth; store them."""
    from hardware_profiles.calibrate import CalibrationConfig, calibrate as run_calibration
    from hardware_profiles.device import resolve_device
    from profiler.environment import collect_environment
    from profiler.store import Store

    ctx = resolve_device(device, tuple(profile_files))
    store = Store(db_path)
    console = stderr_console()
    result = run_calibration(ctx.torch_device, ctx.synchronize,
                             CalibrationConfig(precisions=tuple(precisions) or None,
                                               repeats=repeats),
                             progress=lambda what: console.print(f"calibrating {what}",
                                                                 highlight=False))
    env = collect_environment(ctx.type)
    rows = []
    for r in result["results"]:
        r["calibration_id"] = store.add_calibration(
            device_key=ctx.key, device_name=ctx.name, device_type=ctx.type,
            profile_id=ctx.profile_id, result=r, environment=env)
        if r["kind"] == "matmul":
            peak = ctx.peak(r["precision"])
            r["vendor_peak_flops_per_s"] = peak.flops_per_s
            r["fraction_of_vendor_peak"] = (r["value"] / peak.flops_per_s
                                            if peak.flops_per_s else None)
            r["vendor_peak_source"] = peak.source
        elif getattr(ctx.profile, "memory_bandwidth_gb_per_s", None):
            datasheet = ctx.profile.memory_bandwidth_gb_per_s * 1e9
            r["datasheet_bytes_per_s"] = datasheet
            r["fraction_of_datasheet"] = r["value"] / datasheet
        rows.append(r)
    doc = {"device": ctx.describe(), "db": db_path, "ceilings": rows, "skipped": result["skipped"]}
    if as_json:
        emit_json(doc)
        return
    from reports.format import pct, si

    click.echo(f"{ctx.name} ({ctx.type}), stored in {db_path} under {ctx.key}")
    for r in rows:
        if r["kind"] == "matmul":
            vs = (f", {pct(r['fraction_of_vendor_peak'])} of the vendor peak"
                  if r["fraction_of_vendor_peak"] is not None else ", no vendor peak")
            click.echo(f"  matmul {r['precision']:<5} {si(r['value'], 'FLOP/s'):>14}  "
                       f"n={r['size']}, spread {pct(r['spread'])}{vs}")
        else:
            click.echo(f"  copy        {si(r['value'], 'B/s'):>14}  {r['size'] / 2**20:.0f} MiB, "
                       f"spread {pct(r['spread'])}")
    for precision, why in result["skipped"].items():
        click.echo(f"  skipped {precision}: {why}")


@cli.command()
@profile_option
@db_option
@json_option
@translate_errors
def devices(profile_files, db_path, as_json):
    """Detected devices, the profile each matched and why, their peaks and ceilings."""
    from hardware_profiles.profiles import PRECISIONS
    from hardware_profiles.device import all_devices
    from profiler.store import Store

    store = Store(db_path) if os.path.exists(db_path) else None
    docs = []
    for ctx in all_devices(tuple(profile_files)):
        peaks = {}
        for p in PRECISIONS:
            peak = ctx.peak(p)
            peaks[p] = {"flops_per_s": peak.flops_per_s, "source": peak.source}
        ceilings = [
            {k: c[k] for k in ("kind", "precision", "value", "unit", "size", "spread",
                               "created_at", "id")}
            for c in (store.calibrations(ctx.key) if store else [])]
        docs.append({**ctx.describe(), "peaks": peaks, "ceilings": ceilings})
    if as_json:
        emit_json({"devices": docs})
        return
    from reports.format import si

    for d in docs:
        click.echo(f"{d['name']} ({d['type']}): profile {d['profile'] or 'none'}"
                   + (f" [{d['profile_reason']}]" if d["profile_reason"] else ""))
        click.echo(f"  evidence: {d['evidence']}")
        for p, peak in d["peaks"].items():
            if peak["flops_per_s"] is not None:
                click.echo(f"  peak {p:<5} {si(peak['flops_per_s'], 'FLOP/s'):>14}  {peak['source']}")
        for c in d["ceilings"]:
            click.echo(f"  ceiling {c['kind']} {c['precision'] or '':<5} "
                       f"{si(c['value'], 'FLOP/s' if c['kind'] == 'matmul' else 'B/s')} "
                       f"({c['created_at'][:19]})")


@cli.command()
@click.option("--cpu-tdp-w", type=float, default=None,
              help="Full-load power of the CPU cores (W) for the estimate meter.")
@json_option
@translate_errors
def meters(cpu_tdp_w, as_json):
    """Every power meter etameter knows: available here or not, why, and what it sees."""
    from profiler.meters.select import probe_meters

    report = probe_meters(cpu_tdp_w=cpu_tdp_w)
    if as_json:
        emit_json({"meters": report})
        return
    for m in report:
        state = "available" if m["available"] else f"unavailable: {m['reason']}"
        click.echo(f"{m['meter']:<10} ({m['for']}) {state}")
        for d in m.get("devices", []):
            click.echo(f"    {d}")


@cli.command()
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

    cfg = OverheadConfig(**options)
    console = stderr_console()
    result = measure_overhead(cfg, progress=lambda phase, done, total: console.print(
        f"{phase} {done}/{total}", highlight=False))
    if as_json:
        emit_json(result)
        return
    click.echo(f"{result['preset']} on {result['device']}, meter {result['meter']}: "
               f"{result['overhead_pct']:+.2f}% step time (median of {result['repeats']} pairs, "
               f"spread {result['spread_pct']:.2f}%); target < {result['target_pct']}%")


@cli.command()
@click.option("--law", default="chinchilla", show_default=True,
              help="kaplan, chinchilla, chinchilla-unrounded or epoch-2024.")
@click.option("--law-constants", default=None,
              help="Your own law: 'l_inf=..,a=..,alpha=..' (compute law) or "
                   "'e_irr=..,a_coef=..,b_coef=..,a=..,b=..' (Chinchilla form).")
@click.option("--fit", "fit_file", type=click.Path(dir_okay=False), default=None,
              help="Fit the law to your points: a CSV with columns C,L or N,D,L.")
@click.option("--bootstrap", type=int, default=50, show_default=True,
              help="With --fit: bootstrap resamples for 95%% intervals.")
@click.option("--target-loss", type=float, default=None, help="The loss to reach.")
@click.option("--compute", "compute_flop", type=float, default=None, help="Or: logical compute, FLOP.")
@click.option("--params", "n_params", type=float, default=None, help="Or: N parameters (with --tokens).")
@click.option("--tokens", "n_tokens", type=float, default=None, help="D training tokens (with --params).")
@click.option("--eta", type=float, default=None, help="Logical FLOP per joule.")
@click.option("--run", "run_id", default=None, help="Or: the eta of this stored run (id or prefix).")
@click.option("--device", "device_filter", default=None,
              help="Or: the best ok run on this device (part of its name)...")
@click.option("--variant", default=None, help="...and/or of this variant.")
@click.option("--allow-estimated", is_flag=True, help="Accept an estimated eta (kept labelled).")
@click.option("--power-w", type=float, default=None, help="Power per device, W.")
@click.option("--devices", type=int, default=1, show_default=True, help="Devices working at once.")
@click.option("--mfu", type=float, default=None, help="MFU for the time-from-throughput figure.")
@click.option("--peak-tflops", type=float, default=None, help="Dense peak per device, TFLOP/s.")
@click.option("--budget-j-per-year", type=float, default=None, help="Physical energy budget, J/yr.")
@click.option("--years", type=float, default=None, help="Horizon, years.")
@click.option("--doublings-per-year", type=float, default=None, help="Efficiency doubling rate r.")
@click.option("--price-per-kwh", type=float, default=None, help="Energy price, per kWh.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write Figure 1 and the burden curve (.png or .svg).")
@db_option
@json_option
@translate_errors
def forecast(law, law_constants, fit_file, bootstrap, eta, run_id, device_filter, variant,
             peak_tflops, plot_file, db_path, as_json, **kwargs):
    """Turn a measured eta into the burden of reaching a loss: compute, energy, time, doublings."""
    from reports.scaling.forecast import EtaSource, eta_from_store, forecast as run_forecast

    chosen_law, fit_doc = _forecast_law(law, law_constants, fit_file, bootstrap)
    if eta is not None:
        if run_id or device_filter or variant:
            from profiler.errors import ConfigError
            raise ConfigError("give the eta one way: --eta, or --run, or --device/--variant")
        if eta <= 0:
            from profiler.errors import ConfigError
            raise ConfigError(f"--eta must be positive, got {eta}")
        source = EtaSource(eta, "--eta given by the user")
    else:
        from profiler.store import Store

        source = eta_from_store(Store(db_path), run_id=run_id, device=device_filter, variant=variant)
    doc = run_forecast(chosen_law, source, peak_flops_per_s=peak_tflops * 1e12 if peak_tflops else None,
                       **kwargs)
    if fit_doc:
        doc["fit"] = fit_doc
    if plot_file:
        from reports.plots import save
        from reports.scaling.plot import forecast_figure

        save(forecast_figure(chosen_law, source.eta_flops_per_j, source.estimated), plot_file)
        doc["plot"] = plot_file
    if as_json:
        emit_json(doc)
        return
    _print_forecast(doc)


def _forecast_law(name, constants, fit_file, bootstrap):
    from profiler.errors import ConfigError
    from reports.scaling.laws import ChinchillaLaw, ComputeLaw, get_law

    if sum(x is not None for x in (constants, fit_file)) > 1:
        raise ConfigError("give --law-constants or --fit, not both")
    if fit_file:
        from reports.scaling.fit import fit_chinchilla, fit_compute, read_points

        kind, points = read_points(fit_file)
        result = (fit_chinchilla if kind == "chinchilla" else fit_compute)(points, bootstrap=bootstrap)
        return result.law, result.to_dict()
    if constants:
        try:
            values = {k.strip(): float(v) for k, v in (p.split("=") for p in constants.split(","))}
        except ValueError as e:
            raise ConfigError(f"--law-constants {constants!r}: write name=value pairs separated by commas") from e
        if set(values) == {"l_inf", "a", "alpha"}:
            return ComputeLaw(name="custom", source="--law-constants", **values), None
        if set(values) == {"e_irr", "a_coef", "b_coef", "a", "b"}:
            return ChinchillaLaw(name="custom", source="--law-constants", **values), None
        raise ConfigError("--law-constants needs l_inf,a,alpha or e_irr,a_coef,b_coef,a,b; "
                          f"got {', '.join(sorted(values))}")
    return get_law(name), None


def _print_forecast(doc: dict) -> None:
    from reports.format import MISSING, estimated, si

    est = doc["eta_estimated"]
    law = doc["law"]
    click.echo(f"law: {law['name']} ({law.get('source')})")
    cl = doc["compute_law"]
    click.echo(f"  L(C) = {cl['l_inf']:.4g} + {cl['a']:.4g} C^-{cl['alpha']:.4g}")
    click.echo(f"target loss: {doc['target_loss']:.4f}")
    click.echo(f"logical compute: {doc['logical_compute_flop']:.4g} FLOP")
    if "compute_optimal_n_params" in doc:
        click.echo(f"  compute-optimal: N = {doc['compute_optimal_n_params']:.4g}, "
                   f"D = {doc['compute_optimal_n_tokens']:.4g} tokens")
    click.echo(f"eta: {estimated(si(doc['eta_flops_per_j'], 'FLOP/J'), est)} from {doc['eta_source']}")
    energy = f"{doc['energy_j']:.4g} J = {doc['energy_mwh']:.4g} MWh"
    click.echo(f"energy: {estimated(energy, est)}")
    for key, label, fmt in (("device_hours", "device-hours", "{:.4g}"),
                            ("wall_clock_days", f"wall-clock on {doc['devices']} device(s), days", "{:.4g}"),
                            ("wall_clock_from_mfu_s", "wall-clock from MFU, s", "{:.4g}"),
                            ("cost", "cost", "{:.4g}"), ("doublings_needed", "efficiency doublings needed", "{:.3g}"),
                            ("years_at_r", "years to make them at r", "{:.3g}"),
                            ("years_to_target_with_growth", "years to the target with doubling", "{:.3g}")):
        value = doc.get(key)
        if key == "doublings_needed" and value is not None and value <= 0:
            click.echo(f"{label}: none (the eta suffices with {-value:.3g} doublings to spare)")
            continue
        reason = doc["reasons"].get(key) or doc["reasons"].get(key.replace("_days", "_s"))
        click.echo(f"{label}: " + (fmt.format(value) if value is not None else
                                    f"{MISSING}" + (f" ({reason})" if reason else "")))


@cli.command()
@json_option
def presets(as_json):
    """List the model presets."""
    from harness.presets import PRESETS

    docs = [{"name": p.name, "description": p.description, "batch_size": p.batch_size,
             "seq_len": p.seq_len, "model": p.model.to_dict()} for p in PRESETS.values()]
    if as_json:
        emit_json({"presets": docs})
        return
    for d in docs:
        click.echo(f"{d['name']:<12} {d['batch_size']}x{d['seq_len']:<6} {d['description']}")


if __name__ == "__main__":  # pragma: no cover
    cli()
