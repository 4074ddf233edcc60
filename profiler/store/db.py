"""The Store: opening and checking a file, then writing runs, results, power samples and
calibrations. Reading them back is in ``reading.py``, records for import/export in
``records.py``; both are mixed into :class:`Store`.

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
from profiler.files import is_sqlite_file
from profiler.store.gate import admit_row, admit_summary, check_calibration, plausible_calibration
from profiler.store.query import Query
from profiler.store.reading import Reading
from profiler.store.records import Records
from profiler.store.schema import (BOOL_COLUMNS, LIST_COLUMNS, RESULT_COLUMNS, SCHEMA_VERSION,
                                   migrate, missing_result_columns)

DEFAULT_DB = "etameter.db"
ENV_DB = "ETAMETER_DB"
RUN_STATUSES = ("running", "ok", "failed", "interrupted", "skipped")  # skipped: cannot run here
BUSY_TIMEOUT_S = 30.0


def default_db_path() -> str:
    """``$ETAMETER_DB`` if set, else ``./etameter.db``."""
    return os.environ.get(ENV_DB) or DEFAULT_DB


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


RECOVER_HINT = ("recover what can be read with `sqlite3 {path} .recover | sqlite3 "
                "recovered.db`, or `etameter export` it to a file, then use another --db")


def _check_db_path(target: Path, path: str) -> None:
    """Refuse a folder, a FIFO, a device or a socket (SQLite would block, or create a -journal
    file beside a device), and a path the OS cannot use, before SQLite opens it."""
    from profiler.files import file_kind, os_error_text

    try:
        mode = target.stat().st_mode if target.exists() else None
    except OSError as e:
        raise StoreError(f"cannot use database {os_error_text(e, path)}") from None
    kind = None if mode is None else file_kind(mode)
    if kind == "a folder":
        raise StoreError(f"{path} is a folder, not a database file: pass --db FILE")
    if kind is not None:
        raise StoreError(f"{path} is {kind}, not a database file: pass --db with a regular file")


class Store(Reading, Records, Query):
    """A result database. Opening it creates or checks the schema; it never overwrites data.

    ``write=True`` (writers: bench, calibrate, import, merge, delete, the tracker) creates the
    file if needed and checks its integrity first, refusing a damaged file with the way to
    recover it. ``write=False`` (reports, exports, forecasts) needs the file to exist, never
    creates one, and reads a file in a read-only folder as it is.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, memory: bool = False,
                 write: bool = True):
        if not memory and path is not None and str(path) == "":
            raise StoreError("the database path is empty: pass --db FILE (or set ETAMETER_DB "
                             "to a file), or leave --db out for ./etameter.db")
        self.path = ":memory:" if memory else str(path or default_db_path())
        self.write_mode = write
        self.db = self._open(self.path, write)
        self._ensure_schema()
        if write and self.path != ":memory:":
            self._check_integrity()

    @staticmethod
    def _open(path: str, write: bool) -> sqlite_utils.Database:
        read_only = False
        if path != ":memory:":
            target = Path(path).expanduser()
            _check_db_path(target, path)
            if not write and not target.exists():
                raise StoreError(f"no database at {path}: run etameter bench first, or pass "
                                 "--db (or set ETAMETER_DB) to an existing file")
            parent = target.resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot create database {path}: folder {parent} does not exist")
            read_only = not write and not os.access(parent, os.W_OK)
            if write and not target.exists() and not os.access(parent, os.W_OK):
                raise StoreError(f"cannot create database {path}: folder {parent} is not "
                                 "writable; pass --db with a path in a writable folder")
        try:
            conn = (sqlite3.connect(f"file:{Path(path).resolve()}?immutable=1", uri=True,
                                    isolation_level=None) if read_only else
                    sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None))
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            if is_sqlite_file(path):
                raise StoreError(
                    f"cannot open {path} ({e}): it is a SQLite database, but etameter cannot "
                    "use it here; if its folder is read-only, etameter cannot write the -wal "
                    "and -shm files beside it: copy it to a writable folder") from e
            raise StoreError(
                f"{path} is not a valid SQLite database ({e}); etameter will not overwrite it: "
                "move it aside or pass --db with another path"
            ) from e
        return sqlite_utils.Database(conn)

    def _check_integrity(self) -> None:
        """A quick check before any write: damage found now is refused, not written into."""
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as e:
            problems = [str(e)]
        if problems != ["ok"]:
            raise StoreError(f"{self.path} is damaged ({'; '.join(problems)[:300]}); etameter "
                             "will not write into it: " + RECOVER_HINT.format(path=self.path))

    def _ensure_schema(self) -> None:
        """Check the file, then migrate it and add the record's result columns it lacks."""
        db = self.db
        try:
            found = 0
            if "meta" in db.table_names():
                raw = db["meta"].get("schema_version")["value"]
                try:
                    found = int(raw)
                except (TypeError, ValueError):
                    raise StoreError(f"{self.path}: meta.schema_version is {raw!r}, not a "
                                     "number: the file is damaged or not etameter's") from None
                if found < 1:
                    raise StoreError(f"{self.path}: meta.schema_version {found} is not a "
                                     "valid version: the file is damaged or not etameter's")
                if found > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} was written by a newer etameter (schema {found}, this "
                        f"version reads up to {SCHEMA_VERSION}): upgrade etameter"
                    )
            elif db.table_names():
                raise StoreError(f"{self.path} is a SQLite database but not an etameter one "
                                 f"(tables: {', '.join(db.table_names()[:5])}); etameter will "
                                 "not write into it: pass --db with another path")
            if found == SCHEMA_VERSION and not missing_result_columns(db):
                return
            if not self.write_mode and self.path != ":memory:" and not found:
                raise StoreError(f"{self.path} is empty, not an etameter database: run "
                                 "etameter bench first, or pass --db with a result database")
            if not self.write_mode and self.path != ":memory:" and found == SCHEMA_VERSION:
                return  # only record columns are missing: read as it is, a writer adds them
            if not self.write_mode and self.path != ":memory:" and found:
                # An older file is read through a migrated copy (profiler.store.upgrade);
                # the file is not written: the next writer migrates it.
                from profiler.store.upgrade import migrated_copy

                self.db = migrated_copy(db.conn, self.path)
                return
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            migrate(db, SCHEMA_VERSION)
        except sqlite_utils.db.NotFoundError as e:
            raise StoreError(f"{self.path} has a 'meta' table without schema_version: "
                             "it is not an etameter database") from e
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot use database {self.path}: {e}") from e

    def _write(self, fn) -> None:
        try:
            with self.db.conn:
                fn()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot write to {self.path}: {e}") from e

    def close(self) -> None:
        self.db.conn.close()
        getattr(self.db, "remove_copy", lambda: None)()  # an older file's migrated copy

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

    def delete_runs(self, run_ids: list[str]) -> int:
        """Delete runs with their results and power samples, in one transaction; returns how
        many runs were deleted. Unknown ids are an error naming them, and nothing is deleted."""
        known = {r[0] for r in self.db.execute("select id from runs").fetchall()}
        unknown = [i for i in run_ids if i not in known]
        if unknown:
            raise StoreError(f"no run with id {', '.join(unknown[:5])} in {self.path}")
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table, column in (("power_samples", "run_id"), ("results", "run_id"), ("runs", "id")):
                conn.executemany(f"delete from {table} where {column} = ?", [[i] for i in run_ids])
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot delete from {self.path}: {e}") from e
        return len(run_ids)

    def update_run_config(self, run_id: str, extra: dict) -> None:
        """Merge ``extra`` into a run's stored config (what is only known once it runs)."""
        config = {**self.get_run(run_id)["config"], **extra}
        self._write(lambda: self.db["runs"].update(
            run_id, {"config": json.dumps(config, sort_keys=True, default=str)}))

    def set_run_summary(self, run_id: str, summary: dict, quality_ok: bool | None) -> None:
        """The run's summary over its windows (medians, spread, quality) and its verdict; a
        figure that cannot be true is stored null with the reason (``profiler.store.gate``)."""
        summary = admit_summary(summary)
        self._write(lambda: self.db["runs"].update(run_id, {
            "summary": json.dumps(summary, sort_keys=True, default=str),
            "quality_ok": None if quality_ok is None else int(bool(quality_ok))}))

    # -- results and power samples --------------------------------------------------------------

    def add_result(self, run_id: str, result: dict) -> int:
        """Store one timed window's row (``profiler.measurement.window_row``): the record's
        keys in their columns, flags as comma-joined text, bools as 0/1, and any unknown key
        in the ``detail`` JSON. A figure that cannot be true is stored null with its reason and
        the ``impossible_value`` flag (``profiler.store.gate``); a window is stored once."""
        result = admit_row(result)
        if result.get("window") is not None and self.db.execute(
                "select 1 from results where run_id = ? and window = ? and scope is ? and "
                "rank is ? and node is ?", [run_id, result["window"], result.get("scope"),
                                            result.get("rank"), result.get("node")]).fetchone():
            raise StoreError(f"window {result['window']} of run {run_id} is already stored: "
                             "a window is recorded once")
        row = {k: v for k, v in result.items() if k in RESULT_COLUMNS and k != "detail"}
        extra = {k: v for k, v in result.items() if k not in RESULT_COLUMNS}
        extra.update(result.get("detail") or {})
        row.update(run_id=run_id, detail=json.dumps(extra, sort_keys=True, default=str))
        for key in LIST_COLUMNS:
            if isinstance(row.get(key), (list, tuple)):
                row[key] = ",".join(row[key])
        for key in BOOL_COLUMNS:
            if row.get(key) is not None:
                row[key] = int(bool(row[key]))
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

    # -- calibrations ---------------------------------------------------------------------------

    def add_calibration(self, *, device_key: str, device_name: str, device_type: str,
                        profile_id: str | None, result: dict, environment: dict) -> str:
        """Store one measured ceiling (``result`` from hardware_profiles.calibrate); a value no
        device can show is refused (StoreError naming the field), never stored."""
        check_calibration("calibration", result, stored=False)
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

    def best_ceiling(self, device_key: str, kind: str, precision: str | None) -> dict | None:
        """The highest steady ceiling of this kind and precision for the device, or None.
        A ceiling calibrated as ``noisy`` (its trials disagreed: something else used the
        device) is kept for the record but never chosen: a loaded machine's low figure would
        make every later MFU against the ceiling look high. A stored ceiling no device can show
        (written before the gate) is passed over too."""
        steady = [row for row in self.calibrations(device_key)
                  if row["kind"] == kind and row["precision"] == precision
                  and not row["detail"].get("noisy") and plausible_calibration(row)]
        return max(steady, key=lambda row: row["value"], default=None)
