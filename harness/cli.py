"""The ``etameter`` command line: a thin layer over the library.

Commands that report numbers take ``--json`` and then print exactly one JSON document on
stdout; progress and logs go to stderr. Library errors become one-line messages.
"""

from __future__ import annotations

import functools
import json
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
@click.option("--scenario", default="train", show_default=True, type=click.Choice(["train"]),
              help="What to run: train = forward + backward + AdamW step.")
@click.option("--batch", "batch_size", type=int, default=None, help="Batch size (default: the preset's).")
@click.option("--seq", "seq_len", type=int, default=None, help="Sequence length (default: the preset's).")
@click.option("--steps", type=int, default=None,
              help="Timed steps (default: enough to fill --window-s).")
@click.option("--warmup", "warmup_steps", type=int, default=2, show_default=True,
              help="Warm-up steps, excluded from the timed window.")
@click.option("--window-s", "target_window_s", type=float, default=10.0, show_default=True,
              help="Target length of the timed window when --steps is not given.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="fp32, or bf16 autocast (default: bf16 on a GPU that supports it, else fp32).")
@click.option("--attention", "attention_convention", type=click.Choice(["full", "causal"]),
              default="full", show_default=True,
              help="Attention FLOP convention: full (PaLM) or causal (half).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights and data.")
@click.option("--cpu-tdp-w", type=float, default=None,
              help="Full-load power of this machine's CPU cores (W), for the estimated CPU meter.")
@db_option
@json_option
@translate_errors
def bench(db_path, as_json, **options):
    """Benchmark a training step of the dense reference model and store the result."""
    from harness.runner import BenchConfig, run_bench
    from profiler.store import Store

    cfg = BenchConfig(**options)
    store = Store(db_path)
    console = stderr_console()
    observer = _ProgressObserver(console)
    try:
        run = run_bench(cfg, store, observer, command=" ".join(["etameter", *sys.argv[1:]]))
    except KeyboardInterrupt:
        observer.close()
        console.print(f"[yellow]interrupted: run {observer.run_id or '?'} is recorded as "
                      f"'interrupted' in {db_path}[/yellow]")
        sys.exit(130)
    finally:
        observer.close()
    if as_json:
        emit_json(bench_document(run))
    else:
        from reports.bench_view import print_bench

        print_bench(run)


class _ProgressObserver:
    """Shows the chosen preset and a progress bar on stderr."""

    def __init__(self, console):
        self.console = console
        self.run_id = None
        self._progress = None
        self._tasks = {}

    def started(self, run_id: str, config: dict) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.run_id = run_id
        device = config["device"]
        from rich.text import Text

        self.console.print(Text(
            f"etameter bench: preset {config['preset']} ({config['preset_reason']}); "
            f"{config['batch_size']}x{config['seq_len']} tokens, {config['precision']}, on "
            f"{device['name']} ({device['type']}); run {run_id[:8]}"
        ))
        self._progress = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=self.console, transient=False)
        self._progress.start()

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
    """The JSON document of a bench run: the run's identity, then its result keys, flat."""
    config = run["config"]
    result = dict(run["results"][0]) if run["results"] else {}
    detail = result.pop("detail", {})
    for key in ("id", "run_id"):
        result.pop(key, None)
    return {
        "run_id": run["id"], "status": run["status"], "scenario": run["scenario"],
        "preset": run["preset"], "preset_reason": config.get("preset_reason"),
        "batch_size": config.get("batch_size"), "seq_len": config.get("seq_len"),
        "device": config.get("device"), **result, **detail,
        "meter": config.get("meter"), "meters_tried": config.get("meters_tried"),
        "environment": run["environment"],
    }


@cli.command()
@click.option("--status", type=click.Choice(["running", "ok", "failed", "interrupted"]),
              default=None, help="Only runs with this status.")
@db_option
@json_option
@translate_errors
def report(db_path, as_json, status):
    """List the stored runs with their results."""
    from profiler.store import Store

    store = Store(db_path)
    runs = store.runs(status=status)
    if as_json:
        emit_json({"db": db_path, "runs": runs})
        return
    from reports.table import COLUMNS, run_rows
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows, notes = run_rows(runs)
    table = Table(title=f"etameter runs in {db_path}")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for note in notes:
        console.print(Text(f"  {note}"))


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
