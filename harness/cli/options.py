"""What the commands share: the --db, --json and --profile options, the run filters, error
translation, JSON output and the stderr console."""

from __future__ import annotations

import functools
import json

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


def echo_lines(lines) -> None:
    for line in lines:
        click.echo(line)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


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


def filtered_runs(store, status, preset, scenario, variant, device_filter, since, until):
    """The runs of ``store`` selected by ``filter_options``."""
    return store.runs(status, preset=preset, scenario=scenario, variant=variant,
                      device=device_filter, since=since, until=until)
