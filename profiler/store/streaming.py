"""Exports written as they are read: the JSON records and the flat CSV table of the selected
runs, a few hundred runs at a time (``Records.records_of``), so memory does not grow with
the number of runs exported. The files are the same as ``transfer.export_runs`` writes from a
list of runs (the same keys, tables and columns), and read back by ``transfer.import_file``.
"""

from __future__ import annotations

import csv
import json

from profiler.store.frame import ENVIRONMENT_COLUMN, _rows_of_records
from profiler.store.summary_columns import DERIVED_COLUMNS

BATCH_RUNS = 500


def _batches(ids: list[str]):
    for start in range(0, len(ids), BATCH_RUNS):
        yield ids[start:start + BATCH_RUNS]


def _dumps(value) -> str:
    return json.dumps(value, default=str, allow_nan=False)


def write_json_records(store, ids: list[str], out, tag: str, schema_version: int) -> dict:
    """Write the export document of runs ``ids`` to the text file ``out``, table by table;
    returns the counts written."""
    counts = {"runs": 0, "results": 0, "power_samples": 0}
    env_ids, device_keys = set(), set()
    out.write("{" + _dumps(tag) + ": 1, \"schema_version\": " + str(schema_version))
    for table in ("runs", "results", "power_samples"):
        out.write(f', "{table}": [')
        first = True
        for batch in _batches(ids):
            rows = store.records_of(batch, tables=(table,))[table]
            for row in rows:
                if table == "runs":
                    env_ids.add(row.get("environment_id"))
                    device_keys.add(row.get("device_key"))
                out.write(("\n" if first else ",\n") + _dumps(row))
                first = False
            counts[table] += len(rows)
        out.write("]")
    envs = [e for e in store.db["environments"].rows if e["id"] in env_ids]
    devices = [d for d in store.db["devices"].rows if d["key"] in device_keys]
    for table, rows in (("environments", envs), ("devices", devices),
                        ("calibrations", list(store.db["calibrations"].rows))):
        out.write(f', "{table}": ' + _dumps(rows))
    out.write("}")
    return counts


def csv_header(store) -> list[str]:
    """The columns of the flat table (``profiler.store.frame``) of this database."""
    runs = [c for c in store.db["runs"].columns_dict if c not in DERIVED_COLUMNS]
    results = [c for c in store.db["results"].columns_dict if c != "id"]
    return [f"run__{c}" for c in runs] + [ENVIRONMENT_COLUMN] + [f"result__{c}" for c in results]


def write_csv_table(store, ids: list[str], out) -> dict:
    """Write the flat table of runs ``ids`` to the text file ``out``; returns the counts."""
    writer = csv.DictWriter(out, fieldnames=csv_header(store), extrasaction="ignore")
    writer.writeheader()
    counts = {"runs": 0, "results": 0, "power_samples": 0}
    envs: dict[str, str] = {}
    for batch in _batches(ids):
        records = store.records_of(batch, tables=("runs", "results"))
        wanted = {r.get("environment_id") for r in records["runs"]} - set(envs)
        wanted.discard(None)
        if wanted:
            marks = ",".join("?" * len(wanted))
            envs.update(store.db.execute(f"select id, json from environments where id in "
                                         f"({marks})", list(wanted)).fetchall())
        records["environments"] = [{"id": k, "json": v} for k, v in envs.items()]
        writer.writerows(_rows_of_records(records))
        counts["runs"] += len(records["runs"])
        counts["results"] += len(records["results"])
    return counts
