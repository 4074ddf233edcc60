"""The ``csv`` format: the flat rows of reports.data, one per run."""

from __future__ import annotations

import csv
import io

from reports.formats import ReportFormat, register


def csv_text(runs: list[dict]) -> str:
    """CSV of the flat rows: energy_method, energy_estimated and quality are columns."""
    from reports.data import ROW_COLUMNS, run_row

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    for run in runs:
        writer.writerow(run_row(run))
    return out.getvalue()


FORMAT = register(ReportFormat("csv", lambda runs, store: csv_text(runs),
                               "one flat row per run (reports.data.ROW_COLUMNS)"))
