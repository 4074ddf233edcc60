"""Rich tables on the terminal: one place that renders a titled table and its footnotes."""

from __future__ import annotations

import sys


def print_table(title: str, columns, rows, notes=()) -> None:
    """Cells and notes are printed as plain text (never as rich markup); when stdout is not a
    terminal the table is 160 columns wide rather than 80."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for note in notes:
        console.print(Text(f"  {note}"))
