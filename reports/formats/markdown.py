"""The ``markdown`` format: the run table of reports.table and its notes, as markdown."""

from __future__ import annotations

from reports.formats import ReportFormat, register


def markdown(runs: list[dict]) -> str:
    """The run table (reports.table: estimated values and flagged quality marked) and its
    notes, as markdown."""
    from reports.table import COLUMNS, run_rows

    rows, notes = run_rows(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"


FORMAT = register(ReportFormat("markdown", lambda runs, store: markdown(runs),
                               "the run table as markdown"))
