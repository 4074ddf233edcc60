"""Text formats of a report: markdown, CSV and JSON, from the flat rows of reports.data."""

from __future__ import annotations

import csv
import io
import json

from reports.data import ROW_COLUMNS, run_row
from reports.table import COLUMNS, run_rows


def markdown(runs: list[dict]) -> str:
    """The run table (reports.table: estimated values and flagged quality marked) and its
    notes, as markdown."""
    rows, notes = run_rows(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"


def csv_text(runs: list[dict]) -> str:
    """CSV of the flat rows: energy_method, energy_estimated and quality are columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    for run in runs:
        writer.writerow(run_row(run))
    return out.getvalue()


def json_text(runs: list[dict], db_path: str) -> str:
    return json.dumps({"db": db_path, "runs": runs}, indent=2, default=str)
