"""The ``table`` format: the run table of reports.table as a rich table with footnotes."""

from __future__ import annotations

from reports.formats import ReportFormat, register


def render(runs: list[dict], store, wide: bool = False) -> str:
    """The run table fitted to the terminal's width (every column, ``wide``)."""
    from reports.terminal import runs_table_text

    return runs_table_text(runs, store.path, wide=wide)


FORMAT = register(ReportFormat("table", render, "one row per run, on the terminal",
                               render_wide=lambda runs, store: render(runs, store, wide=True)))
