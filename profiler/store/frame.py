"""The one flat table of stored runs: a row per result window, joined with its run.

Columns are ``run__<name>`` (every column of the run) and ``result__<name>`` (every column of
the result but its row id), plus ``run__environment_json``: the run's environment as JSON
text. A run without results gives one row with only its run columns. This is the CSV and
Parquet export format (``profiler.store.transfer`` reads it back) and what ``reports.load``
returns as a DataFrame.
"""

from __future__ import annotations

import json

ENVIRONMENT_COLUMN = "run__environment_json"


def flat_rows(source) -> list[dict]:
    """The flat rows of ``source``: runs as ``Store.runs()`` returns them (each with its
    ``results``, decoded), or the dict of ``Store.run_records`` (plain stored rows).

    Decoded runs keep their decoded scalars (``quality_ok`` and ``energy_estimated`` as
    bools); their dicts (config, summary, detail) become JSON text and their lists (flags)
    comma-joined text, as stored.
    """
    if isinstance(source, dict):
        return _rows_of_records(source)
    rows = []
    for run in source:
        env = run.get("environment")
        base = {f"run__{k}": _cell(v) for k, v in run.items()
                if k not in ("results", "environment")}
        base[ENVIRONMENT_COLUMN] = _cell(env) if env else None
        rows += _joined(base, run.get("results") or [])
    return rows


def flat_frame(source):
    """:func:`flat_rows` as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(flat_rows(source))


def _rows_of_records(records: dict) -> list[dict]:
    envs = {e["id"]: e["json"] for e in records.get("environments", [])}
    by_run: dict[str, list] = {}
    for res in records.get("results", []):
        by_run.setdefault(res["run_id"], []).append(res)
    rows = []
    for run in records.get("runs", []):
        base = {f"run__{k}": v for k, v in run.items()}
        base[ENVIRONMENT_COLUMN] = envs.get(run.get("environment_id"))
        rows += _joined(base, by_run.get(run["id"], []))
    return rows


def _joined(base: dict, results: list[dict]) -> list[dict]:
    if not results:
        return [dict(base)]
    return [{**base, **{f"result__{k}": _cell(v) for k, v in res.items() if k != "id"}}
            for res in results]


def _cell(value):
    """A value as the store keeps it: dicts as JSON text, lists as comma-joined text."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value
