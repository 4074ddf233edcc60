"""The ``json`` format: the stored runs as they are, with the database they came from."""

from __future__ import annotations

import json

from reports.formats import ReportFormat, register


def json_text(runs: list[dict], db_path: str) -> str:
    """The document; NaN and infinity become null, so strict JSON parsers read it."""
    from reports.numbers import json_safe

    return json.dumps(json_safe({"db": db_path, "runs": runs}), indent=2, default=str,
                      allow_nan=False)


FORMAT = register(ReportFormat("json", lambda runs, store: json_text(runs, store.path) + "\n",
                               "the runs as stored, one JSON document"))
