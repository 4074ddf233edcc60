"""What the commands share: the --db, --json, --profile and --force options, the run filters,
the checked numeric option type, error translation, JSON output and the stderr console."""

from __future__ import annotations

import functools
import json
import math

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
progress_option = click.option(
    "--progress/--no-progress", "show_progress", default=None,
    help="Show progress with the time remaining on stderr (default: on; off under --json).")
force_option = click.option("--force", is_flag=True,
                            help="Replace the output file if it exists (never a database).")


class Number(click.ParamType):
    """A finite number in a range: NaN, infinity and values outside ``[min, max]`` (or the
    open ends with ``min_open``/``max_open``) are refused with the option's name and the range.
    ``integer=True`` takes whole numbers only."""

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 min_open: bool = False, max_open: bool = False, integer: bool = False):
        self.min, self.max, self.min_open, self.max_open = min, max, min_open, max_open
        self.integer = integer
        self.name = "integer" if integer else "number"

    def range_text(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.min_open else '>='} {self.min:g}")
        if self.max is not None:
            parts.append(f"{'<' if self.max_open else '<='} {self.max:g}")
        kind = "a whole number" if self.integer else "a finite number"
        return kind + (" " + " and ".join(parts) if parts else "")

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"must be {self.range_text()}, got {value!r}", param, ctx)
        try:
            number = int(value) if self.integer and not isinstance(value, float) else float(value)
        except (TypeError, ValueError, OverflowError):
            try:  # an integer written as 1e3 or 8.0
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                self.fail(f"must be {self.range_text()}, got {value!r}", param, ctx)
        bad = not math.isfinite(number)
        if not bad and self.integer:
            bad = number != int(number)
            number = int(number) if not bad else number
        if not bad and self.min is not None:
            bad = number <= self.min if self.min_open else number < self.min
        if not bad and self.max is not None:
            bad = number >= self.max if self.max_open else number > self.max
        if bad:
            self.fail(f"must be {self.range_text()}, got {value}", param, ctx)
        return number

    def __repr__(self) -> str:
        return f"Number({self.range_text()})"


#: Shared kinds of numbers: a count or size (>= 1), a positive quantity, a length of time.
COUNT = Number(1, 2 ** 31, integer=True)  # sizes, steps, windows: never an absurd integer
POSITIVE = Number(0, min_open=True)
SECONDS = Number(0, 1e6)
#: A power figure in W: positive, below any real device.
WATTS = Number(0, 1e5, min_open=True, max_open=True)
#: A dense peak in TFLOP/s, with the profiles' plausible maximum.
TFLOPS = Number(0, 1e5, min_open=True, max_open=True)
#: A fraction: MFU and tolerances are in (0, 1].
FRACTION = Number(0, 1, min_open=True)


def translate_errors(fn):
    """Turn etameter's typed errors into click errors (exit 1, a one-line message); an OS
    error no library call translated (a path too long, a full disk) becomes one line too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EtameterError as e:
            raise click.ClickException(_inert(str(e))) from e
        except OSError as e:
            from profiler.files import os_error_text

            raise click.ClickException(_inert(os_error_text(e))) from e

    return wrapper


def _inert(text: str) -> str:
    """An error message (it may quote stored text) with control and bidi characters visible."""
    from reports.escape import plain

    return plain(text)


def emit_json(doc) -> None:
    """Print ``doc`` as JSON: NaN and infinity become null (strict parsers reject them)."""
    from reports.numbers import json_safe

    click.echo(json.dumps(json_safe(doc), indent=2, sort_keys=False, default=str,
                          allow_nan=False))


def echo_lines(lines) -> None:
    """Print text lines, each with control and bidi characters made visible."""
    from reports.escape import plain

    for line in lines:
        click.echo(plain(line))


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def progress_display(show_progress: bool | None, as_json: bool):
    """The stderr progress display (profiler.progress): on unless ``--json`` without
    ``--progress``, or ``--no-progress``."""
    from profiler.progress import ProgressDisplay

    return ProgressDisplay(stderr_console(),
                           enabled=(not as_json) if show_progress is None else show_progress)


def read_store(db_path: str):
    """The database of a reading command: it must exist; nothing is created or migrated."""
    from profiler.store import Store

    return Store(db_path, write=False)


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


def run_filters(status, preset, scenario, variant, device_filter, since, until) -> dict:
    """The store's filter arguments (``Store.iter_runs``, ``count_runs``...) of
    ``filter_options``."""
    return {"status": status, "preset": preset, "scenario": scenario, "variant": variant,
            "device": device_filter, "since": since, "until": until}


def limit_options(what: str, default_text: str):
    """``--limit N`` and ``--all``: how many of the newest ``what`` a view shows."""
    def decorate(fn):
        fn = click.option("--all", "show_all", is_flag=True,
                          help=f"Show every selected one of the {what}, not only the newest.")(fn)
        return click.option("--limit", type=COUNT, default=None,
                            help=f"Show the newest N {what} ({default_text}).")(fn)
    return decorate


def filtered_runs(store, status, preset, scenario, variant, device_filter, since, until):
    """The runs of ``store`` selected by ``filter_options``."""
    return store.runs(status, preset=preset, scenario=scenario, variant=variant,
                      device=device_filter, since=since, until=until)
