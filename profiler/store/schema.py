"""The store's tables, their migrations, and the result columns that follow the record.

``MIGRATIONS`` is frozen: entry n takes a file from schema version n to n + 1, and a
migration never changes meaning, so the column dicts it uses (``RESULT_COLUMNS_V1``,
``RESULT_COLUMNS_V3``...) are frozen with it. The results table's *current* columns are
``RESULT_COLUMNS``: an id, the run id and every column of a measurement's record
(``profiler.measurement.ROW_COLUMNS``). Opening a file for writing adds any record column its
results table lacks (nullable, under the same write lock as the migrations), so a new metric
needs no hand-written migration. Columns are never dropped or renamed without a migration.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

import sqlite_utils

from profiler.measurement import ROW_COLUMNS
from profiler.store.summary_columns import DERIVED_COLUMNS, SOURCE_COLUMNS, refresh_sql

SCHEMA_VERSION = 4

RUN_COLUMNS_V1 = {
    "id": str, "started_at": str, "finished_at": str, "status": str, "error": str,
    "scenario": str, "preset": str, "variant": str, "device": str, "device_type": str,
    "attention_convention": str, "command": str, "etameter_version": str,
    "config": str, "environment": str, "summary": str, "quality_ok": int,
}
ENVIRONMENT_COLUMNS = {"id": str, "json": str}
DEVICE_COLUMNS = {"key": str, "name": str, "type": str, "profile_id": str, "evidence": str,
                  "first_seen": str, "last_seen": str}

RESULT_COLUMNS_V1 = {
    "id": int, "run_id": str, "window": int, "steps": int, "tokens_per_step": int,
    "duration_s": float, "step_time_s": float, "tokens_per_s": float,
    "logical_flops_per_token": float, "logical_flops_per_step": float, "logical_flops": float,
    "flops_per_s": float, "precision": str, "peak_flops_per_s": float, "peak_source": str,
    "mfu": float, "mfu_reason": str, "variant_precision": str,
    "mfu_vs_variant_peak": float, "variant_peak_reason": str,
    "mfu_vs_ceiling": float, "ceiling_flops_per_s": float, "ceiling_reason": str,
    "energy_j": float, "energy_method": str, "energy_scope": str, "energy_estimated": int,
    "energy_reason": str, "avg_power_w": float, "peak_power_w": float,
    "idle_power_w": float, "energy_net_j": float, "energy_net_reason": str,
    "eta_flops_per_j": float, "eta_reason": str, "tokens_per_j": float,
    "attention_convention": str, "flags": str, "loss_first": float, "loss_last": float,
    "detail": str,
}
#: Added by schema 3: a result is a whole node's (``scope`` "node") or one rank's ("rank").
RESULT_COLUMNS_V3 = {"rank": int, "scope": str}

#: The results table's current columns: the row id, its run and the measurement record.
RESULT_COLUMNS: dict[str, type] = {"id": int, "run_id": str} | ROW_COLUMNS
#: Result columns stored as comma-joined text (a list when read), and as 0/1 (a bool when read).
LIST_COLUMNS = ("flags",)
BOOL_COLUMNS = ("energy_estimated",)

CALIBRATION_COLUMNS = {
    "id": str, "created_at": str, "device_key": str, "device_name": str, "device_type": str,
    "profile_id": str, "kind": str, "precision": str, "value": float, "unit": str,
    "size": int, "repeats": int, "spread": float, "detail": str, "environment": str,
}

POWER_SAMPLE_COLUMNS = {"run_id": str, "window": int, "device": str, "t_s": float,
                        "power_w": float}


# -- migrations: frozen, each takes version n to n + 1 -------------------------------------------

def _migration_1(db: sqlite_utils.Database) -> None:
    """The first schema: runs with inline config and environment, results, samples, ceilings."""
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db["runs"].create(RUN_COLUMNS_V1, pk="id", if_not_exists=True)
    db["results"].create(RESULT_COLUMNS_V1, pk="id", if_not_exists=True,
                         foreign_keys=[("run_id", "runs", "id")])
    db["results"].create_index(["run_id"], if_not_exists=True)
    db["power_samples"].create(POWER_SAMPLE_COLUMNS, if_not_exists=True,
                               foreign_keys=[("run_id", "runs", "id")])
    db["power_samples"].create_index(["run_id", "window"], if_not_exists=True)
    db["calibrations"].create(CALIBRATION_COLUMNS, pk="id", if_not_exists=True)
    db["calibrations"].create_index(["device_key", "kind", "precision"], if_not_exists=True)


def _migration_2(db: sqlite_utils.Database) -> None:
    """Environments and devices get their own tables; runs record their device key, the
    environment's id, and the pid and host that ran them."""
    db["environments"].create(ENVIRONMENT_COLUMNS, pk="id", if_not_exists=True)
    db["devices"].create(DEVICE_COLUMNS, pk="key", if_not_exists=True)
    runs = db["runs"]
    for column, kind in (("device_key", str), ("environment_id", str), ("pid", int), ("host", str)):
        if column not in runs.columns_dict:
            runs.add_column(column, kind)
    for row in list(runs.rows):
        env_text = row.get("environment") or "{}"
        env = json.loads(env_text)
        env_id = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]
        db["environments"].insert({"id": env_id, "json": json.dumps(env, sort_keys=True)},
                                  pk="id", ignore=True)
        device = (json.loads(row.get("config") or "{}").get("device") or {})
        key = device.get("key") or f"{row.get('device_type')}:{row.get('device')}"
        db["devices"].insert({"key": key, "name": row.get("device"), "type": row.get("device_type"),
                              "profile_id": device.get("profile"),
                              "evidence": json.dumps(device.get("evidence"), sort_keys=True),
                              "first_seen": row.get("started_at"), "last_seen": row.get("started_at")},
                             pk="key", ignore=True)
        runs.update(row["id"], {"environment_id": env_id, "device_key": key,
                                "host": env.get("host")})
    if sqlite3.sqlite_version_info >= (3, 35):
        db.execute("ALTER TABLE runs DROP COLUMN environment")
    else:  # pragma: no cover - older SQLite: transform copies the table
        runs.transform(drop={"environment"})
    runs.create_index(["device_key"], if_not_exists=True)
    runs.create_index(["started_at"], if_not_exists=True)


def _migration_3(db: sqlite_utils.Database) -> None:
    """Results of runs spread over several processes: the rank and the scope of each row."""
    results = db["results"]
    for column, kind in RESULT_COLUMNS_V3.items():
        if column not in results.columns_dict:
            results.add_column(column, kind)


#: Added by schema 4: the indexes of runs' filters, order and comparison groups.
RUN_INDEXES_V4 = (
    ("status", "started_at"), ("variant", "started_at"), ("preset", "started_at"),
    ("scenario", "started_at"),
    ("model", "scenario", "batch_size", "seq_len", "ranks", "group_device", "attention_convention",
     "meter_method", "variant", "started_at"),
    ("model", "scenario", "batch_size", "seq_len", "ranks", "group_device", "attention_convention",
     "meter_method", "sweep_id", "variant", "started_at"),
)


def _migration_4(db: sqlite_utils.Database) -> None:
    """Fleet-scale reads: the derived columns of runs (``profiler.store.summary_columns``:
    the comparison's group fields and the summary's headline figures), filled for every
    stored run from its JSON in one UPDATE, kept current by triggers, and indexes for the
    filters, the order and the group key. Every run is kept."""
    runs = db["runs"]
    for column, kind in DERIVED_COLUMNS.items():
        if column not in runs.columns_dict:
            runs.add_column(column, kind)
    db.execute(refresh_sql("1"))
    db.execute("CREATE TRIGGER IF NOT EXISTS runs_derived_insert AFTER INSERT ON runs "
               f"BEGIN {refresh_sql()}; END")
    db.execute("CREATE TRIGGER IF NOT EXISTS runs_derived_update AFTER UPDATE OF "
               f"{', '.join(SOURCE_COLUMNS)} ON runs BEGIN {refresh_sql()}; END")
    for columns in RUN_INDEXES_V4:
        runs.create_index(list(columns), if_not_exists=True)


#: MIGRATIONS[n] takes a database at version n to version n + 1.
MIGRATIONS = [_migration_1, _migration_2, _migration_3, _migration_4]


def schema_version(db: sqlite_utils.Database) -> int:
    if "meta" not in db.table_names():
        return 0
    row = db.execute("select value from meta where key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def missing_result_columns(db: sqlite_utils.Database) -> dict[str, type]:
    """Record columns the results table lacks (all of them if it does not exist yet)."""
    present = db["results"].columns_dict
    return {c: kind for c, kind in RESULT_COLUMNS.items() if c not in present}


def migrate(db: sqlite_utils.Database, to_version: int = SCHEMA_VERSION) -> None:
    """Apply the missing migrations, each in its own write transaction. The version is read
    again under the write lock, so processes opening a new file at once migrate it once.

    At the current version, the transaction that finds nothing left to migrate also adds the
    record columns the results table lacks (additive and nullable: never a drop or rename).
    """
    while True:
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            current = schema_version(db)
            if current >= to_version:
                if current >= SCHEMA_VERSION:
                    for column, kind in missing_result_columns(db).items():
                        db["results"].add_column(column, kind)
                return
            MIGRATIONS[current](db)
            db["meta"].insert({"key": "schema_version", "value": str(current + 1)},
                              pk="key", replace=True)
