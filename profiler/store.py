"""The result store: one SQLite file through sqlite-utils.

Tables (schema version 3; ``MIGRATIONS`` builds a new file and upgrades an older one):

- ``meta``: key/value, holds ``schema_version``.
- ``runs``: one row per benchmark run, with a stable unique id (uuid4 hex), its full config
  as JSON, the ids of its device and environment, the pid and host that ran it, and a
  status: ``running`` while it runs, then ``ok``, ``skipped``, ``failed`` or
  ``interrupted``. The row is written (and committed) before any work starts, so a run
  that dies is never lost, and is updated when it ends.
- ``environments``: software and host descriptions, keyed by a hash of their content.
- ``devices``: every device a run or calibration used, keyed by its stable device key.
- ``results``: one row per timed window of a run, metric columns named with their units;
  a run over several processes has a ``node`` row and one ``rank`` row per process.
- ``power_samples``: the power trace of each window and device, where the meter samples.
- ``calibrations``: measured ceilings of a device (matmul FLOP/s per precision, copy
  bandwidth), keyed by a stable device key.

Every write is its own transaction and the journal is WAL with a busy timeout, so a crash or
Ctrl-C leaves a valid database and several processes can write to one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from profiler.errors import StoreError

SCHEMA_VERSION = 3
DEFAULT_DB = "etameter.db"
ENV_DB = "ETAMETER_DB"
RUN_STATUSES = ("running", "ok", "failed", "interrupted", "skipped")  # skipped: cannot run here
BUSY_TIMEOUT_S = 30.0

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
RESULT_COLUMNS = {**RESULT_COLUMNS_V1, **RESULT_COLUMNS_V3}


CALIBRATION_COLUMNS = {
    "id": str, "created_at": str, "device_key": str, "device_name": str, "device_type": str,
    "profile_id": str, "kind": str, "precision": str, "value": float, "unit": str,
    "size": int, "repeats": int, "spread": float, "detail": str, "environment": str,
}

POWER_SAMPLE_COLUMNS = {"run_id": str, "window": int, "device": str, "t_s": float,
                        "power_w": float}


def default_db_path() -> str:
    """``$ETAMETER_DB`` if set, else ``./etameter.db``."""
    return os.environ.get(ENV_DB) or DEFAULT_DB


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """A result database. Opening it creates or checks the schema; it never overwrites data."""

    def __init__(self, path: str | os.PathLike | None = None, *, memory: bool = False):
        self.path = ":memory:" if memory else str(path or default_db_path())
        self.db = self._open(self.path)
        self._ensure_schema()

    @staticmethod
    def _open(path: str) -> sqlite_utils.Database:
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot create database {path}: folder {parent} does not exist")
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{path} is not a valid SQLite database ({e}); etameter will not overwrite it: "
                "move it aside or pass --db with another path"
            ) from e
        return sqlite_utils.Database(conn)

    def _ensure_schema(self) -> None:
        db = self.db
        try:
            found = 0
            if "meta" in db.table_names():
                found = int(db["meta"].get("schema_version")["value"])
                if found > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} was written by a newer etameter (schema {found}, this "
                        f"version reads up to {SCHEMA_VERSION}): upgrade etameter"
                    )
            elif db.table_names():
                raise StoreError(f"{self.path} is a SQLite database but not an etameter one "
                                 f"(tables: {', '.join(db.table_names()[:5])}); etameter will "
                                 "not write into it: pass --db with another path")
            if found == SCHEMA_VERSION:
                return
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            migrate(db, SCHEMA_VERSION)
        except sqlite_utils.db.NotFoundError as e:
            raise StoreError(f"{self.path} has a 'meta' table without schema_version: "
                             "it is not an etameter database") from e
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot use database {self.path}: {e}") from e

    # -- runs ---------------------------------------------------------------------------------

    def start_run(self, *, scenario: str, preset: str, variant: str, device: str,
                  device_type: str, attention_convention: str, config: dict,
                  environment: dict, command: str = "") -> str:
        """Record a new run as ``running`` and return its id."""
        run_id = uuid.uuid4().hex
        device_info = config.get("device") or {}
        device_key = device_info.get("key") or f"{device_type}:{device}"

        def write():
            env_id = self._put_environment(environment)
            self._put_device(device_key, device, device_type, device_info.get("profile"),
                             device_info.get("evidence"))
            self.db["runs"].insert({
                "id": run_id, "started_at": utc_now(), "finished_at": None, "status": "running",
                "error": None, "scenario": scenario, "preset": preset, "variant": variant,
                "device": device, "device_type": device_type, "device_key": device_key,
                "attention_convention": attention_convention, "command": command or None,
                "etameter_version": environment.get("etameter_version"),
                "config": json.dumps(config, sort_keys=True, default=str),
                "environment_id": env_id, "pid": os.getpid(), "host": socket.gethostname(),
            })
        self._write(write)
        return run_id

    def _put_environment(self, environment: dict) -> str:
        text = json.dumps(environment, sort_keys=True, default=str)
        env_id = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.db["environments"].insert({"id": env_id, "json": text}, pk="id", ignore=True)
        return env_id

    def _put_device(self, key: str, name: str, device_type: str, profile_id: str | None,
                    evidence) -> None:
        now = utc_now()
        table = self.db["devices"]
        table.insert({"key": key, "name": name, "type": device_type, "profile_id": profile_id,
                      "evidence": json.dumps(evidence, sort_keys=True, default=str),
                      "first_seen": now, "last_seen": now}, pk="key", ignore=True)
        table.update(key, {"last_seen": now, "profile_id": profile_id})

    def devices(self) -> list[dict]:
        return [{**d, "evidence": json.loads(d["evidence"] or "null")}
                for d in self.db["devices"].rows_where(order_by="key")]

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        self._write(lambda: self.db["runs"].update(
            run_id, {"status": status, "error": error, "finished_at": utc_now()}))

    def update_run_config(self, run_id: str, extra: dict) -> None:
        """Merge ``extra`` into a run's stored config (what is only known once it runs)."""
        config = {**self.get_run(run_id)["config"], **extra}
        self._write(lambda: self.db["runs"].update(
            run_id, {"config": json.dumps(config, sort_keys=True, default=str)}))

    def set_run_summary(self, run_id: str, summary: dict, quality_ok: bool | None) -> None:
        """The run's summary over its windows (medians, spread, quality) and its verdict."""
        self._write(lambda: self.db["runs"].update(run_id, {
            "summary": json.dumps(summary, sort_keys=True, default=str),
            "quality_ok": None if quality_ok is None else int(bool(quality_ok))}))

    def add_result(self, run_id: str, result: dict) -> int:
        """Store one timed window's metrics; unknown keys go into the ``detail`` JSON."""
        row = {k: v for k, v in result.items() if k in RESULT_COLUMNS and k != "detail"}
        extra = {k: v for k, v in result.items() if k not in RESULT_COLUMNS}
        extra.update(result.get("detail") or {})
        row.update(run_id=run_id, detail=json.dumps(extra, sort_keys=True, default=str))
        if isinstance(row.get("flags"), (list, tuple)):
            row["flags"] = ",".join(row["flags"])
        if "energy_estimated" in row and row["energy_estimated"] is not None:
            row["energy_estimated"] = int(bool(row["energy_estimated"]))
        table = self.db["results"]
        self._write(lambda: table.insert(row))
        return table.last_pk

    def add_power_samples(self, run_id: str, window: int, device: str,
                          trace: tuple[tuple[float, float], ...], origin: float | None = None) -> None:
        """Store a window's power trace. Times are stored relative to ``origin`` (a run-wide
        start on the meter's clock, so windows line up on one timeline), else to the trace's
        first sample."""
        if not trace:
            return
        t0 = trace[0][0] if origin is None else origin
        rows = [(run_id, window, device, t - t0, p) for t, p in trace]
        conn = self.db.conn
        # One transaction for the whole trace (sqlite-utils would commit chunk by chunk), so a
        # writer killed half-way leaves none of it rather than part of it.
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("insert into power_samples (run_id, window, device, t_s, power_w) "
                             "values (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot write to {self.path}: {e}") from e

    def power_samples(self, run_id: str) -> list[dict]:
        return list(self.db["power_samples"].rows_where("run_id = ?", [run_id],
                                                        order_by="window, device, t_s"))

    def add_calibration(self, *, device_key: str, device_name: str, device_type: str,
                        profile_id: str | None, result: dict, environment: dict) -> str:
        """Store one measured ceiling (``result`` from hardware_profiles.calibrate)."""
        cal_id = uuid.uuid4().hex
        core = ("kind", "precision", "value", "unit", "size", "repeats", "spread")
        row = {k: result.get(k) for k in core}
        row.update(id=cal_id, created_at=utc_now(), device_key=device_key,
                   device_name=device_name, device_type=device_type, profile_id=profile_id,
                   detail=json.dumps({k: v for k, v in result.items() if k not in core}),
                   environment=json.dumps(environment, sort_keys=True, default=str))
        self._write(lambda: self.db["calibrations"].insert(row))
        return cal_id

    def calibrations(self, device_key: str | None = None) -> list[dict]:
        """Stored ceilings, newest first, optionally for one device."""
        where, args = (None, None) if device_key is None else ("device_key = ?", [device_key])
        rows = self.db["calibrations"].rows_where(where, args, order_by="created_at desc")
        return [{**r, "detail": json.loads(r["detail"] or "{}"),
                 "environment": json.loads(r["environment"] or "{}")} for r in rows]

    def latest_ceiling(self, device_key: str, kind: str, precision: str | None) -> dict | None:
        """The newest ceiling of this kind and precision for the device, or None."""
        for row in self.calibrations(device_key):
            if row["kind"] == kind and row["precision"] == precision:
                return row
        return None

    def _write(self, fn) -> None:
        try:
            with self.db.conn:
                fn()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot write to {self.path}: {e}") from e

    # -- reading ------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict:
        try:
            row = self.db["runs"].get(run_id)
        except sqlite_utils.db.NotFoundError as e:
            raise StoreError(f"no run with id {run_id} in {self.path}") from e
        return _decode_run(row, self._environments([row.get("environment_id")]))

    def find_run(self, prefix: str) -> dict:
        """The one run whose id starts with ``prefix`` (ids are long: a few characters do)."""
        rows = self.db.execute("select id from runs where id like ?", [prefix + "%"]).fetchall()
        if len(rows) != 1:
            raise StoreError(f"run id {prefix!r} matches {len(rows)} runs in {self.path}: "
                             + ("give more of it" if rows else "see etameter report"))
        return self.get_run(rows[0][0]) | {"results": self.results(rows[0][0])}

    def _environments(self, ids) -> dict[str, dict]:
        ids = [i for i in set(ids) if i]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"select id, json from environments where id in ({marks})", ids)
        return {i: json.loads(text) for i, text in rows.fetchall()}

    def results(self, run_id: str) -> list[dict]:
        """The results of one run, in window order."""
        rows = self.db["results"].rows_where("run_id = ?", [run_id], order_by="window, id")
        return [_decode_result(r) for r in rows]

    def runs(self, status: str | None = None, *, preset: str | None = None,
             scenario: str | None = None, variant: str | None = None, device: str | None = None,
             since: str | None = None, until: str | None = None) -> list[dict]:
        """Runs, oldest first, each with its results (a list, possibly empty).

        Filters: exact ``status``, ``preset``, ``scenario``, ``variant``; ``device`` matches
        part of the device name or key (any case); ``since``/``until`` are ISO dates or times
        compared with the start time (``until`` a date includes that whole day).
        """
        clauses, args = [], []
        for column, value in (("status", status), ("preset", preset), ("scenario", scenario),
                              ("variant", variant)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if device is not None:
            clauses.append("(lower(device) like ? or lower(device_key) like ?)")
            args += [f"%{device.lower()}%"] * 2
        if since is not None:
            clauses.append("started_at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            args.append(until + ("T99" if len(until) == 10 else ""))
        where = " and ".join(clauses) or None
        rows = list(self.db["runs"].rows_where(where, args or None, order_by="started_at"))
        envs = self._environments(r.get("environment_id") for r in rows)
        runs = [_decode_run(r, envs) for r in rows]
        by_run: dict[str, list] = {r["id"]: [] for r in runs}
        selected = f"run_id in (select id from runs where {where})" if where else None
        for res in self.db["results"].rows_where(selected, args or None, order_by="id"):
            by_run[res["run_id"]].append(_decode_result(res))
        for r in runs:
            r["results"] = by_run[r["id"]]
        return runs

    # -- records: what export, import and merge move between databases ----------------------

    def run_records(self, runs: list[dict] | None = None) -> dict:
        """Everything stored about ``runs`` (default: all), as plain rows, self-contained."""
        runs = self.runs() if runs is None else runs
        ids = [r["id"] for r in runs]
        raw = {r["id"]: r for r in self.db["runs"].rows}
        env_ids = {raw[i]["environment_id"] for i in ids if raw[i].get("environment_id")}
        device_keys = {raw[i]["device_key"] for i in ids if raw[i].get("device_key")}
        wanted = set(ids)
        result_rows = [r for r in self.db["results"].rows if r["run_id"] in wanted]
        return {
            "schema_version": SCHEMA_VERSION,
            "runs": [raw[i] for i in ids],
            "results": [{k: v for k, v in r.items() if k != "id"} for r in result_rows],
            "power_samples": [r for r in self.db["power_samples"].rows if r["run_id"] in wanted],
            "environments": [e for e in self.db["environments"].rows if e["id"] in env_ids],
            "devices": [d for d in self.db["devices"].rows if d["key"] in device_keys],
            "calibrations": list(self.db["calibrations"].rows),
        }

    def add_records(self, records: dict) -> dict:
        """Add rows from ``run_records`` (another database, a file); what exists is kept.

        Runs and calibrations carry stable unique ids, so a run already here is skipped with
        everything that belongs to it: importing or merging twice adds nothing.
        """
        found = records.get("schema_version", SCHEMA_VERSION)
        if found > SCHEMA_VERSION:
            raise StoreError(f"these records come from a newer etameter (schema {found}, this "
                             f"version reads up to {SCHEMA_VERSION}): upgrade etameter")
        existing = {r[0] for r in self.db.execute("select id from runs").fetchall()}
        new_runs = [r for r in records.get("runs", []) if r["id"] not in existing]
        new_ids = {r["id"] for r in new_runs}
        known_cal = {r[0] for r in self.db.execute("select id from calibrations").fetchall()}
        counts = {"runs": len(new_runs), "skipped_runs": len(records.get("runs", [])) - len(new_runs)}

        results = [r for r in records.get("results", []) if r["run_id"] in new_ids]
        samples = [r for r in records.get("power_samples", []) if r["run_id"] in new_ids]
        cals = [c for c in records.get("calibrations", []) if c["id"] not in known_cal]
        # One transaction: an import or merge cut short adds nothing, so it can simply be
        # run again (a half-added run would be skipped the second time, losing its results).
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._insert_rows("environments", records.get("environments", []), ignore=True)
            self._insert_rows("devices", records.get("devices", []), ignore=True)
            self._insert_rows("runs", new_runs)
            self._insert_rows("results", results)
            self._insert_rows("power_samples", samples)
            self._insert_rows("calibrations", cals)
            conn.execute("COMMIT")
        except (sqlite3.DatabaseError, StoreError) as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"cannot add records to {self.path}: {e}") from e
        counts.update(results=len(results), power_samples=len(samples), calibrations=len(cals))
        return counts

    def _insert_rows(self, table: str, rows: list[dict], ignore: bool = False) -> None:
        """Insert rows with plain SQL inside the caller's transaction."""
        if not rows:
            return
        columns = [c for c in self.db[table].columns_dict if c != "id" or table != "results"]
        unknown = set().union(*(r.keys() for r in rows)) - set(columns) - {"id"}
        if unknown:
            raise StoreError(f"{table} records have columns this etameter does not know: "
                             f"{sorted(unknown)}")
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        verb = "insert or ignore" if ignore else "insert"
        self.db.conn.executemany(f'{verb} into "{table}" ({names}) values ({marks})',
                                 [[r.get(c) for c in columns] for r in rows])

    def close(self) -> None:
        self.db.conn.close()


def process_gone(run: dict) -> bool:
    """True for a ``running`` run whose process, on this host, no longer exists: it died
    without recording an ending (killed, or the machine lost power)."""
    if run.get("status") != "running" or run.get("host") != socket.gethostname() or not run.get("pid"):
        return False
    import psutil

    return not psutil.pid_exists(run["pid"])


def _decode_run(row: dict, environments: dict[str, dict] | None = None) -> dict:
    row = dict(row)
    for key in ("config", "summary"):
        row[key] = json.loads(row[key]) if row.get(key) else {}
    row["environment"] = (environments or {}).get(row.get("environment_id"), {})
    if row.get("quality_ok") is not None:
        row["quality_ok"] = bool(row["quality_ok"])
    return row


def _decode_result(row: dict) -> dict:
    row = dict(row)
    row["detail"] = json.loads(row["detail"]) if row.get("detail") else {}
    row["flags"] = [f for f in (row.get("flags") or "").split(",") if f]
    if row.get("energy_estimated") is not None:
        row["energy_estimated"] = bool(row["energy_estimated"])
    return row


# -- schema migrations -------------------------------------------------------------------------

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


#: MIGRATIONS[n] takes a database at version n to version n + 1.
MIGRATIONS = [_migration_1, _migration_2, _migration_3]


def schema_version(db: sqlite_utils.Database) -> int:
    if "meta" not in db.table_names():
        return 0
    row = db.execute("select value from meta where key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite_utils.Database, to_version: int) -> None:
    """Apply the missing migrations, each in its own write transaction. The version is read
    again under the write lock, so processes opening a new file at once migrate it once."""
    while True:
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            current = schema_version(db)
            if current >= to_version:
                return
            MIGRATIONS[current](db)
            db["meta"].insert({"key": "schema_version", "value": str(current + 1)},
                              pk="key", replace=True)
