"""Commands over the stored results: report, compare, plot, export, import, merge, delete.

Reading commands open the database with ``Store(path, write=False)``: a missing file is an
error, never an empty new one. No command writes onto the database it reads, and an existing
output file is replaced only with ``--force``, through a temporary file and a rename."""

from __future__ import annotations

import itertools

import click

from harness.cli.options import (db_option, emit_json, filter_options, filtered_runs,
                                 force_option, json_option, limit_options, read_store,
                                 run_filters, translate_errors)
from reports import formats

TRANSFER_FORMATS = ("json", "csv", "parquet")
#: How many runs the views for people (table, markdown, HTML) show by default.
DEFAULT_RUNS = 50
#: compare prints every group's full table up to this many groups, else a list of them.
FULL_TABLES = 3
#: How many groups the list of compare shows by default.
DEFAULT_GROUPS = 20
#: How many groups plot variants draws by default (a row of panels each).
PLOT_GROUPS = 6


def _more_runs_note(shown: int, total: int) -> str:
    return (f"showing the newest {shown} of {total} selected runs (oldest first); see more with "
            "--limit N or --all, or narrow them with --since, --until, --preset, --scenario, "
            "--variant, --device or --status")

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
@limit_options("runs", f"default {DEFAULT_RUNS} for table, markdown and html; json and csv "
                       "stream every selected run")
@force_option
@db_option
@json_option
@translate_errors
def report(db_path, as_json, fmt, html_file, wide, limit, show_all, force, **filters):
    """List the stored runs: one row per run (medians over its windows), the newest 50 by
    default with the count of all; --json and --format csv stream every selected run."""
    from profiler.files import check_output_path, write_atomically

    if html_file:
        check_output_path(html_file, force=force, protected=(db_path,), what="HTML file")
    store = read_store(db_path)
    selected = run_filters(**filters)
    fmt = "json" if as_json else fmt
    spec = formats.get(fmt)
    total = store.count_runs(**selected)
    bounded = None if show_all else (limit or DEFAULT_RUNS)
    if html_file:
        from pathlib import Path

        from reports.html import html_report

        runs = list(store.iter_runs(limit=bounded, with_results=True, **selected))
        page = html_report(runs, store)
        write_atomically(html_file, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"),
                         force=force, protected=(db_path,), what="HTML file")
        click.echo(f"wrote {html_file}" + (f" ({_more_runs_note(len(runs), total)})"
                                            if len(runs) < total else ""), err=True)
        if fmt == "html":  # the page just written, not a second one
            click.echo(page)
            return
    shown = bounded if spec.bounded else (None if show_all else limit)
    runs = store.iter_runs(limit=shown, with_results=spec.with_results, **selected)
    for chunk in formats.chunks(fmt, runs, store, wide=wide):
        click.echo(chunk, nl=False)
    if shown is not None and shown < total:
        click.echo(_more_runs_note(shown, total), err=not spec.bounded or fmt == "html")


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
@click.option("--group", "group", default=None,
              help="Open the full table of this group (its id, as the list of groups shows it).")
@across_sweeps_option
@limit_options("groups", "default: every group's table when there are at most "
                         f"{FULL_TABLES}, else a list of the newest {DEFAULT_GROUPS}; --json "
                         "streams every group")
@filter_options
@wide_option
@db_option
@json_option
@translate_errors
def compare(baseline, run_ids, group, across_sweeps, wide, limit, show_all, db_path, as_json,
            **filters):
    """Variants against a baseline within each group of comparable runs (same preset,
    scenario, sizes, device, attention convention, meter and sweep), with 95% intervals and
    verdicts: one table per group, or, with more groups, a list of the newest with their
    verdicts (--group ID opens one)."""
    from profiler.errors import ConfigError
    from reports import group_query as gq
    from reports.compare import compare_groups
    from reports.terminal import print_compare

    store = read_store(db_path)
    selected = run_filters(**filters)
    if run_ids:
        groups = compare_groups([store.find_run(i) for i in run_ids], baseline, named=True)
    elif baseline is None:
        raise ConfigError("give --baseline VARIANT, or name the runs to compare with --run ID")
    elif group is not None:
        found = gq.find_group(store, group, across_sweeps, **selected)
        doc = gq.compare_document(store, found, baseline, across_sweeps, **selected)
        if doc is None:
            raise ConfigError(f"group {found['id']} has no run of baseline variant "
                              f"{baseline!r} and another variant to compare")
        groups = [doc]
    else:
        most = None if show_all or (as_json and limit is None) else (limit or DEFAULT_GROUPS)
        shown, total = gq.group_list(store, across_sweeps, baseline, compared_only=True,
                                     limit=most, **selected)
        docs = gq.iter_compare(store, baseline, shown, across_sweeps, **selected)
        first = next(docs, None)
        if first is None:
            raise gq.no_group_error(store, baseline, **selected)
        docs = itertools.chain([first], docs)
        if as_json:
            _stream_json({"baseline": baseline, "across_sweeps": across_sweeps,
                          "total_groups": total}, "groups", docs)
            return
        if len(shown) > FULL_TABLES or limit is not None or show_all:
            _print_group_list(list(docs), shown, total, len(shown) < total)
            return
        groups = list(docs)
    if as_json:
        emit_json({"baseline": baseline, "across_sweeps": across_sweeps, "groups": groups})
    else:
        from reports.terminal import print_compare

        print_compare(groups, wide=wide)


def _stream_json(head: dict, key: str, items) -> None:
    """``head`` with ``key``: the list of ``items``, written one item at a time."""
    from reports.formats.json import strict_dumps

    click.echo(strict_dumps(head)[:-1] + f', "{key}": [', nl=False)
    for n, item in enumerate(items):
        click.echo(("\n" if n == 0 else ",\n") + strict_dumps(item), nl=False)
    click.echo("\n]}")


def _print_group_list(docs, shown, total: int, more: bool) -> None:
    from reports.compare_list import COLUMNS, list_cells, list_notes
    from reports.terminal import print_table

    latest = {g["id"]: g["latest"] for g in shown}
    print_table("etameter compare: groups of comparable runs", COLUMNS,
                list_cells(docs, latest), list_notes(len(docs), total, more))


@click.command()
@click.argument("kind", type=click.Choice(["variants", "power", "throughput"]))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Output file, .png or .svg.")
@click.option("--run", "run_id", default=None, help="power: the run to plot (id or prefix).")
@click.option("--against", type=click.Choice(["batch_size", "seq_len"]), default="batch_size",
              show_default=True, help="throughput: the swept quantity.")
@across_sweeps_option
@limit_options("groups", f"variants: default {PLOT_GROUPS}")
@filter_options
@force_option
@db_option
@translate_errors
def plot(kind, out_file, run_id, against, across_sweeps, limit, show_all, force, db_path,
         **filters):
    """Plot eta and MFU by variant (the newest groups), a run's power timeline, or throughput
    against a sweep; one panel per group of comparable runs, titled with it."""
    from profiler.files import check_output_path
    from reports import plots

    check_output_path(out_file, force=force, protected=(db_path,), what="plot file")
    store = read_store(db_path)
    if kind == "power":
        fig = plots.run_power_figure(store, run_id)
    elif kind == "variants":
        from reports.group_query import variant_documents

        docs, total = variant_documents(store, across_sweeps,
                                        None if show_all else (limit or PLOT_GROUPS),
                                        **run_filters(**filters))
        fig = plots.variants_figure(docs)
        if len(docs) < total:
            click.echo(f"plotted the newest {len(docs)} of {total} groups; see more with "
                       "--limit N or --all, or narrow the runs with the filters", err=True)
    else:
        fig = plots.throughput_figure(filtered_runs(store, **filters), against)
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
    from profiler.store.transfer import export_selection

    check_output_path(path, force=force, protected=(db_path,), what="export file")
    store = read_store(db_path)
    counts = export_selection(store, path, fmt, force=force, **run_filters(**filters))
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
    if status is not None:  # their rows only: no window is read
        chosen.update((r["id"], r) for r in store.iter_runs(status=status))
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
