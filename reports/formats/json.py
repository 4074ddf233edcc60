"""The ``json`` format: the stored runs as they are, with the database they came from."""

from __future__ import annotations

import json

from reports.formats import ReportFormat, register


def json_text(runs: list[dict], db_path: str) -> str:
    return json.dumps({"db": db_path, "runs": runs}, indent=2, default=str)


FORMAT = register(ReportFormat("json", lambda runs, store: json_text(runs, store.path) + "\n",
                               "the runs as stored, one JSON document"))
