"""The ``markdown`` format: the run table of reports.table and its notes, as markdown."""

from __future__ import annotations

import re

from reports.formats import ReportFormat, register

#: Characters that would end a cell, start raw HTML, code or a link, escaped with a backslash.
_SPECIAL = re.compile(r"([\\|<>`\[\]])")
#: A URL scheme that runs code when clicked; its colon is escaped so no renderer links it.
_SCRIPT_SCHEME = re.compile(r"\b(javascript|vbscript|data)(\s*):", re.IGNORECASE)


def md_escape(text: str) -> str:
    """``text`` as literal markdown: no raw HTML, no cell break, no code span, no line break
    inside a table row, no link, no control or bidi character (reports.escape.plain)."""
    from reports.escape import plain

    return _SCRIPT_SCHEME.sub(r"\1\2\\:", _SPECIAL.sub(r"\\\1", plain(text)))


def markdown(runs: list[dict]) -> str:
    """The run table (reports.table: estimated values and flagged quality marked) and its
    notes, as markdown."""
    from reports.table import COLUMNS, run_rows

    rows, notes = run_rows(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines + ([""] + [f"- {md_escape(n)}" for n in notes] if notes else [])) + "\n"


FORMAT = register(ReportFormat("markdown", lambda runs, store: markdown(runs),
                               "the run table as markdown"))
