"""Everything etameter renders on the terminal with rich: a titled table with footnotes, the
key/value table of one bench run, the comparison table of a sweep or of ``etameter compare``,
and the run table of ``etameter report``.

Cells and notes are always plain text (never rich markup). When stdout is not a terminal,
titled tables are ``$COLUMNS`` or 160 columns wide rather than 80. The comparison and run tables fit the
console's width (reports.table_fit): their default columns with short headers that break only
at spaces, the intervals on a second line where there is room, and a footnote naming what was
left out; ``wide`` shows every column at its natural width.
"""

from __future__ import annotations

import os
import sys


def _console():
    from rich.console import Console

    # rich reads $COLUMNS itself; a pipe without it gets 160 columns rather than 80
    return Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)


def print_fitted(console, title: str, columns, cells, notes=(), *, wide: bool = False,
                 wide_hint: str = "--wide or --json") -> None:
    """A titled table of (figure, second line) cells fitted to ``console``'s width (or every
    column at its natural width, ``wide``), then its footnotes."""
    from rich.table import Table
    from rich.text import Text

    from reports.escape import plain
    from reports.table_fit import cell_text, fit, left_out_note, natural_layout

    layout = natural_layout(columns, cells) if wide else fit(columns, cells, console.width)
    table = Table(title=Text(plain(title), style="italic"))
    for i, width in zip(layout.shown, layout.widths):
        table.add_column(Text(plain(columns[i].header)), width=width, overflow="fold")
    for row in cells:
        table.add_row(*(Text(plain(cell_text(row[i], i in layout.details), one_line=False))
                        for i in layout.shown))
    width = console.width
    if wide and layout.total_width > width:
        console.width = layout.total_width  # every column whole: the terminal may wrap lines
    try:
        console.print(table)
    finally:
        console.width = width
    for note in list(notes) + left_out_note(columns, layout, console.width, wide_hint):
        console.print(Text(f"  {plain(note)}"))


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


def runs_table_text(runs: list[dict], db_path: str, wide: bool = False, console=None) -> str:
    """The run table of ``etameter report`` (reports.table) and its footnotes, fitted to the
    console's width (every column with ``wide``)."""
    from reports.table import run_rows, terminal_cells

    rows, notes = run_rows(runs)
    columns, cells = terminal_cells(rows, wide)
    console = console or _console()
    with console.capture() as captured:
        print_fitted(console, f"etameter runs in {db_path}", columns, cells, notes, wide=wide,
                     wide_hint="etameter report --wide, or --format csv or json,")
    return captured.get()


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


def print_sweep(runs: list[dict], console=None) -> None:
    """The runs of a sweep, one table per group (reports.compare.sweep_groups), each against
    the reference variant (the first of the sweep)."""
    from reports.compare import sweep_groups

    groups = sweep_groups(runs)
    print_compare(groups, heading="etameter bench", console=console,
                  wide_hint=f"etameter compare --baseline {groups[0]['baseline_variant']} --wide, "
                            "or --json,")


def print_compare(groups: list[dict], heading: str = "etameter compare", *, wide: bool = False,
                  console=None, wide_hint: str = "--wide, or --json,") -> None:
    """One table per group of ``reports.compare.compare_groups``, titled with its group,
    fitted to the console's width (every column with ``wide``)."""
    from reports.compare_table import comparison_cells, terminal_cells

    console = console or _console()
    for group in groups:
        _, notes = comparison_cells(group["rows"])
        columns, cells = terminal_cells(group["rows"], wide)
        print_fitted(console, f"{heading}: {group['title']}, against {group['baseline_variant']}",
                     columns, cells, group["notes"] + notes, wide=wide, wide_hint=wide_hint)
