"""Commands over the stored results: report, compare, plot, export, import, merge."""

from __future__ import annotations

import click

from harness.cli.options import (db_option, emit_json, filter_options, filtered_runs, json_option,
                                 translate_errors)
from reports import formats

TRANSFER_FORMATS = ("json", "csv", "parquet")


@click.command()
@filter_options
@click.option("--format", "fmt", type=click.Choice(formats.names()),
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
    runs = filtered_runs(store, **filters)
    fmt = "json" if as_json else fmt
    if html_file:
        from reports.html import html_report

        page = html_report(runs, store)
        with open(html_file, "w") as f:
            f.write(page)
        click.echo(f"wrote {html_file}", err=True)
        if fmt == "html":  # the page just written, not a second one
            click.echo(page)
            return
    click.echo(formats.render(fmt, runs, store), nl=False)


@click.command()
@click.option("--baseline", required=True, help="The variant the others are compared with.")
@filter_options
@db_option
@json_option
@translate_errors
def compare(baseline, db_path, as_json, **filters):
    """Each variant against a baseline variant on the same preset, scenario and device."""
    from profiler.store import Store
    from reports.compare import compare_groups

    groups = compare_groups(filtered_runs(Store(db_path), **filters), baseline)
    if as_json:
        emit_json({"baseline": baseline, "groups": groups})
    else:
        from reports.terminal import print_compare

        print_compare(groups, baseline)


@click.command()
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
    from profiler.store import Store
    from reports import plots

    store = Store(db_path)
    if kind == "power":
        fig = plots.run_power_figure(store, run_id)
    else:
        runs = filtered_runs(store, **filters)
        fig = (plots.variants_figure(runs) if kind == "variants"
               else plots.throughput_figure(runs, against))
    click.echo(f"wrote {plots.save(fig, out_file)}", err=True)


transfer_format_option = click.option(
    "--format", "fmt", type=click.Choice(TRANSFER_FORMATS), default=None,
    help="Default: from the file suffix.")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@transfer_format_option
@filter_options
@db_option
@json_option
@translate_errors
def export_cmd(path, fmt, db_path, as_json, **filters):
    """Write the selected runs to a JSON, CSV or Parquet file."""
    from profiler.store import Store
    from profiler.store.transfer import export_runs

    store = Store(db_path)
    counts = export_runs(store, filtered_runs(store, **filters), path, fmt)
    if as_json:
        emit_json({"path": path, **counts})
    else:
        click.echo(f"wrote {counts['runs']} runs ({counts['results']} results) to {path}")


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@transfer_format_option
@db_option
@json_option
@translate_errors
def import_cmd(path, fmt, db_path, as_json):
    """Add the runs of an export file to the database (runs already there are skipped)."""
    from profiler.store import Store
    from profiler.store.transfer import import_file

    counts = import_file(Store(db_path), path, fmt)
    if as_json:
        emit_json({"path": path, **counts})
    else:
        click.echo(f"imported {counts['runs']} runs ({counts['skipped_runs']} already present)")


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--into", required=True, type=click.Path(dir_okay=False),
              help="The database to merge into (created if missing).")
@json_option
@translate_errors
def merge(sources, into, as_json):
    """Bring the runs of several databases into one, without duplicates."""
    from profiler.store.transfer import merge as merge_dbs

    totals = merge_dbs(list(sources), into)
    if as_json:
        emit_json({"into": into, **totals})
    else:
        click.echo(f"merged {totals.get('runs', 0)} runs into {into} "
                   f"({totals.get('skipped_runs', 0)} already present)")


COMMANDS = (report, compare, plot, export_cmd, import_cmd, merge)
