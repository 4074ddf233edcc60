"""The ``json`` format: the stored runs as they are, with the database they came from.

Streamed: the document is written one run (with its windows) at a time, each run on its own
line, so a report of any number of runs holds one batch of them in memory."""

from __future__ import annotations

import json

from reports.formats import ReportFormat, register


def strict_dumps(value, **kwargs) -> str:
    """``value`` as strict JSON (NaN and infinity as null, reports.numbers.json_safe), fast:
    encoded as it is first, and walked by ``json_safe`` only when the text holds a NaN or an
    Infinity token (or those words in a string)."""
    text = json.dumps(value, default=str, **kwargs)
    if "NaN" not in text and "Infinity" not in text:
        return text
    from reports.numbers import json_safe

    return json.dumps(json_safe(value), default=str, allow_nan=False, **kwargs)


_dumps = strict_dumps


def json_text(runs: list[dict], db_path: str) -> str:
    """The document; NaN and infinity become null, so strict JSON parsers read it."""
    return "".join(json_chunks(runs, db_path)).rstrip("\n")


def json_chunks(runs, db_path: str):
    """``json_text`` in pieces, from runs read one at a time."""
    yield '{"db": ' + _dumps(db_path) + ', "runs": ['
    first = True
    for run in runs:
        yield ("\n" if first else ",\n") + _dumps(run)
        first = False
    yield "\n]}\n"


FORMAT = register(ReportFormat("json", lambda runs, store: json_text(runs, store.path) + "\n",
                               "the runs as stored, one JSON document",
                               stream=lambda runs, store: json_chunks(runs, store.path),
                               with_results=True, bounded=False))
