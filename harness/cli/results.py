"""Commands over the stored results: report, compare, plot, export, import, merge, delete.

Reading commands open the database with ``Store(path, write=False)``: a missing file is an
error, never an empty new one. No command writes onto the database it reads, and an existing
output file is replaced only with ``--force``, through a temporary file and a rename."""

from __future__ import annotations

import click

from harness.cli.options import (db_option, emit_json, filter_options, filtered_runs,
                                 force_option, json_option, read_store, translate_errors)
from reports import formats

TRANSFER_FORMATS = ("json", "csv", "parquet")

wide_option = click.option(
    "--wide", is_flag=True,
    help="Every column, at its natural width; by default the table fits the terminal, "
         "leaving out (and naming) what does not fit.")


@click.command()
@filter_options
@click.option("--format", "fmt", type=click.Choice(formats.names()),
              default="table", show_default=True, help="Output format (on stdout).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML page (tables and plots) to this file.")
@wide_option
@force_option
@db_option
@json_option
@translate_errors
def report(db_path, as_json, fmt, html_file, wide, force, **filters):
    """List the stored runs: one row per run (medians over its windows)."""
    from profiler.files import check_output_path, write_atomically

    if html_file:
        check_output_path(html_file, force=force, protected=(db_path,), what="HTML file")
    store = read_store(db_path)
    runs = filtered_runs(store, **filters)
    fmt = "json" if as_json else fmt
    if html_file:
        from pathlib import Path

        from reports.html import html_report

        page = html_report(runs, store)
        write_atomically(html_file, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"),
                         force=force, protected=(db_path,), what="HTML file")
        click.echo(f"wrote {html_file}", err=True)
        if fmt == "html":  # the page just written, not a second one
            click.echo(page)
            return
    click.echo(formats.render(fmt, runs, store, wide=wide), nl=False)


across_sweeps_option = click.option(
    "--across-sweeps", is_flag=True,
    help="Group runs from different sweeps (etameter bench invocations) together, taking the "
         "latest run of each variant; the default compares only runs of one sweep.")


@click.command()
@click.option("--baseline", default=None,
              help="The variant the others are compared with (default with --run: the first "
                   "named run).")
@click.option("--run", "run_ids", multiple=True,
              help="Compare exactly these runs (id or prefix; repeatable); they must be of one "
                   "group: same preset, scenario, sizes, device, attention convention and meter.")
@across_sweeps_option
@filter_options
@wide_option
@db_option
@json_option
@translate_errors
def compare(baseline, run_ids, across_sweeps, wide, db_path, as_json, **filters):
    """Variants against a baseline within each group of comparable runs (same preset,
    scenario, sizes, device, attention convention, meter and sweep), with 95% intervals and
    verdicts; one table per group."""
    from profiler.errors import ConfigError
    from reports.compare import compare_groups

    store = read_store(db_path)
    if run_ids:
        groups = compare_groups([store.find_run(i) for i in run_ids], baseline, named=True)
    elif baseline is None:
        raise ConfigError("give --baseline VARIANT, or name the runs to compare with --run ID")
    else:
        groups = compare_groups(filtered_runs(store, **filters), baseline,
                                across_sweeps=across_sweeps)
    if as_json:
        emit_json({"baseline": baseline, "across_sweeps": across_sweeps, "groups": groups})
    else:
        from reports.terminal import print_compare

        print_compare(groups, wide=wide)


@click.command()
@click.argument("kind", type=click.Choice(["variants", "power", "throughput"]))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Output file, .png or .svg.")
@click.option("--run", "run_id", default=None, help="power: the run to plot (id or prefix).")
@click.option("--against", type=click.Choice(["batch_size", "seq_len"]), default="batch_size",
              show_default=True, help="throughput: the swept quantity.")
@across_sweeps_option
@filter_options
@force_option
@db_option
@translate_errors
def plot(kind, out_file, run_id, against, across_sweeps, force, db_path, **filters):
    """Plot eta and MFU by variant, a run's power timeline, or throughput against a sweep;
    one panel per group of comparable runs, titled with it."""
    from profiler.files import check_output_path
    from reports import plots
    from reports.compare import group_documents

    check_output_path(out_file, force=force, protected=(db_path,), what="plot file")
    store = read_store(db_path)
    if kind == "power":
        fig = plots.run_power_figure(store, run_id)
    else:
        runs = filtered_runs(store, **filters)
        fig = (plots.variants_figure(group_documents(runs, across_sweeps)) if kind == "variants"
               else plots.throughput_figure(runs, against))
    path = plots.save(fig, out_file, force=force, protected=(db_path,))
    click.echo(f"wrote {path}", err=True)


transfer_format_option = click.option(
    "--format", "fmt", type=click.Choice(TRANSFER_FORMATS), default=None,
    help="Default: from the file suffix.")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@transfer_format_option
@filter_options
@force_option
@db_option
@json_option
@translate_errors
def export_cmd(path, fmt, force, db_path, as_json, **filters):
    """Write the selected runs to a JSON, CSV or Parquet file (never onto the database, and
    over an existing file only with --force)."""
    from profiler.files import check_output_path
    from profiler.store.transfer import export_runs

    check_output_path(path, force=force, protected=(db_path,), what="export file")
    store = read_store(db_path)
    counts = export_runs(store, filtered_runs(store, **filters), path, fmt, force=force)
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
    from profiler.files import check_input_file, discard_if_new_and_empty
    from profiler.store import Store
    from profiler.store.transfer import format_of, import_file

    format_of(path, fmt)
    check_input_file(path, "import file")  # before the database is created
    with discard_if_new_and_empty(db_path):
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
    from profiler.files import discard_if_new_and_empty
    from profiler.store.transfer import merge as merge_dbs

    with discard_if_new_and_empty(into):
        totals = merge_dbs(list(sources), into)
    if as_json:
        emit_json({"into": into, **totals})
    else:
        click.echo(f"merged {totals.get('runs', 0)} runs into {into} "
                   f"({totals.get('skipped_runs', 0)} already present)")


@click.command()
@click.argument("run_ids", nargs=-1, metavar="RUN...")
@click.option("--status", type=click.Choice(["running", "ok", "skipped", "failed", "interrupted"]),
              default=None, help="Also delete every run with this status.")
@db_option
@json_option
@translate_errors
def delete(run_ids, status, db_path, as_json):
    """Delete runs (ids or unique prefixes, and/or every run of --status) with their results
    and power samples, in one transaction. It asks nothing: it prints what it deleted."""
    from profiler.errors import ConfigError
    from profiler.store import Store

    if not run_ids and status is None:
        raise ConfigError("name the runs to delete (RUN... ids or prefixes, see etameter "
                          "report) or give --status, e.g. --status failed")
    read_store(db_path).close()  # a missing database is an error, not a new empty file
    store = Store(db_path)
    chosen = {}
    for prefix in run_ids:
        if len(prefix) < 8:  # a deletion names its run as reports show it, not by a guess
            raise ConfigError(f"run id {prefix!r} is too short to delete by: give at least 8 "
                              "characters, as etameter report shows them")
        run = store.find_run(prefix)
        chosen[run["id"]] = run
    if status is not None:
        chosen.update((r["id"], r) for r in store.runs(status))
    _refuse_live_runs(chosen.values())
    store.delete_runs(list(chosen))
    deleted = [{"id": i, "variant": r.get("variant"), "status": r.get("status"),
                "started_at": r.get("started_at")} for i, r in chosen.items()]
    if as_json:
        emit_json({"db": db_path, "deleted": deleted})
    else:
        from harness.cli.options import echo_lines

        echo_lines([f"deleted run {d['id'][:8]} ({d['variant']}, {d['status']}, "
                    f"started {d['started_at']})" for d in deleted]
                   + [f"deleted {len(deleted)} run(s) from {db_path}"])


def _refuse_live_runs(runs) -> None:
    """A ``running`` run whose process is alive on this host is still being written: deleting
    it would lose it and leave that process writing into nothing."""
    from profiler.errors import ConfigError
    from profiler.lifecycle import run_process_alive

    live = [r for r in runs if r.get("status") == "running" and run_process_alive(r)]
    if live:
        named = ", ".join(f"{r['id'][:8]} (pid {r['pid']})" for r in live[:5])
        raise ConfigError(f"run {named} is still running on this host: stop it first (Ctrl-C, "
                          "or kill PID; it is then recorded as interrupted) or wait for it to "
                          "end; nothing was deleted")


COMMANDS = (report, compare, plot, export_cmd, import_cmd, merge, delete)
