"""The ``table`` format: the run table of reports.table as a rich table with footnotes."""

from __future__ import annotations

from reports.formats import ReportFormat, register


def render(runs: list[dict], store) -> str:
    from reports.terminal import runs_table_text

    return runs_table_text(runs, store.path)


FORMAT = register(ReportFormat("table", render, "one row per run, on the terminal"))
