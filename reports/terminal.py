"""Everything etameter renders on the terminal with rich: a titled table with footnotes, the
key/value table of one bench run, the comparison table of a sweep or of ``etameter compare``,
and the run table of ``etameter report``.

Cells and notes are always plain text (never rich markup). When stdout is not a terminal,
titled tables are 160 columns wide rather than 80.
"""

from __future__ import annotations

import sys


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _print_titled(console, title: str, columns, rows, notes) -> None:
    from rich.table import Table
    from rich.text import Text

    from reports.escape import plain

    table = Table(title=Text(plain(title), style="italic"))
    for col in columns:
        table.add_column(plain(col), overflow="fold")
    for row in rows:
        table.add_row(*(Text(plain(cell)) for cell in row))
    console.print(table)
    for note in notes:
        console.print(Text(f"  {plain(note)}"))


def print_table(title: str, columns, rows, notes=()) -> None:
    """A titled table of text cells on stdout, then its footnotes."""
    _print_titled(_console(), title, columns, rows, notes)


def table_text(title: str, columns, rows, notes=()) -> str:
    """What ``print_table`` would print, as a string (styled only when stdout is a terminal)."""
    console = _console()
    with console.capture() as captured:
        _print_titled(console, title, columns, rows, notes)
    return captured.get()


def runs_table_text(runs: list[dict], db_path: str) -> str:
    """The run table of ``etameter report`` (reports.table) and its footnotes."""
    from reports.table import COLUMNS, run_rows

    rows, notes = run_rows(runs)
    return table_text(f"etameter runs in {db_path}", COLUMNS, rows, notes)


def print_bench(run: dict) -> None:
    """One bench run as a key/value table (reports.bench_view.bench_lines)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from reports.bench_view import bench_lines
    from reports.escape import plain

    table = Table(title="etameter bench", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in bench_lines(run):
        table.add_row(Text(plain(label)), Text(plain(value)))
    Console().print(table)


def print_sweep(runs: list[dict]) -> None:
    """The runs of a sweep, one table per group (reports.compare.sweep_groups), each against
    the reference variant (the first of the sweep)."""
    from reports.compare import sweep_groups

    print_compare(sweep_groups(runs), heading="etameter bench")


def print_compare(groups: list[dict], heading: str = "etameter compare") -> None:
    """One table per group of ``reports.compare.compare_groups``, titled with its group."""
    from reports.compare_table import COLUMNS, comparison_cells

    for group in groups:
        cells, notes = comparison_cells(group["rows"])
        print_table(f"{heading}: {group['title']}, against {group['baseline_variant']}",
                    COLUMNS, cells, group["notes"] + notes)
