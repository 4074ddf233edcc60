"""The ``csv`` format: the flat rows of reports.data, one per run."""

from __future__ import annotations

import csv
import io

from reports.formats import ReportFormat, register

#: A cell starting with one of these is a formula to a spreadsheet (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A text cell a spreadsheet will not run: a leading apostrophe before a formula start.
    Numbers are left as they are (a negative number is not a formula); control and bidi
    characters are shown as visible escapes (reports.escape.plain)."""
    from reports.escape import plain

    if isinstance(value, str):
        value = plain(value, one_line=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(runs: list[dict]) -> str:
    """CSV of the flat rows: energy_method, energy_estimated and quality are columns."""
    return "".join(csv_chunks(runs))


def csv_chunks(runs, rows_per_chunk: int = 500):
    """``csv_text`` in pieces, from runs read one at a time."""
    from reports.data import ROW_COLUMNS, run_row

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    for n, run in enumerate(runs, 1):
        writer.writerow({k: safe_cell(v) for k, v in run_row(run).items()})
        if n % rows_per_chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


FORMAT = register(ReportFormat("csv", lambda runs, store: csv_text(runs),
                               "one flat row per run (reports.data.ROW_COLUMNS)",
                               stream=lambda runs, store: csv_chunks(runs), bounded=False))
