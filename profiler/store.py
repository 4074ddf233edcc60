"""The result store: one SQLite file through sqlite-utils.

Tables (schema version 1):

- ``meta``: key/value, holds ``schema_version``.
- ``runs``: one row per benchmark run, with a stable unique id (uuid4 hex), its full config
  and environment as JSON, and a status: ``running`` while it runs, then ``ok``, ``failed``
  or ``interrupted``. The row is written (and committed) before any work starts, so a run
  that dies is never lost, and is updated when it ends.
- ``results``: one row per timed window of a run, metric columns named with their units.
- ``power_samples``: the power trace of each window and device, where the meter samples.
- ``calibrations``: measured ceilings of a device (matmul FLOP/s per precision, copy
  bandwidth), keyed by a stable device key.

Every write is its own transaction and the journal is WAL with a busy timeout, so a crash or
Ctrl-C leaves a valid database and several processes can write to one file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from profiler.errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_DB = "etameter.db"
ENV_DB = "ETAMETER_DB"
RUN_STATUSES = ("running", "ok", "failed", "interrupted", "skipped")  # skipped: cannot run here
BUSY_TIMEOUT_S = 30.0

RUN_COLUMNS = {
    "id": str, "started_at": str, "finished_at": str, "status": str, "error": str,
    "scenario": str, "preset": str, "variant": str, "device": str, "device_type": str,
    "attention_convention": str, "command": str, "etameter_version": str,
    "config": str, "environment": str, "summary": str, "quality_ok": int,
}

RESULT_COLUMNS = {
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
            if "meta" in db.table_names():
                found = int(db["meta"].get("schema_version")["value"])
                if found > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} was written by a newer etameter (schema {found}, this "
                        f"version reads up to {SCHEMA_VERSION}): upgrade etameter"
                    )
                return
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            with db.conn:
                db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)},
                                  pk="key", replace=True)
                db["runs"].create(RUN_COLUMNS, pk="id", if_not_exists=True)
                db["results"].create(RESULT_COLUMNS, pk="id", if_not_exists=True,
                                     foreign_keys=[("run_id", "runs", "id")])
                db["results"].create_index(["run_id"], if_not_exists=True)
                db["power_samples"].create(POWER_SAMPLE_COLUMNS, if_not_exists=True,
                                           foreign_keys=[("run_id", "runs", "id")])
                db["power_samples"].create_index(["run_id", "window"], if_not_exists=True)
                db["calibrations"].create(CALIBRATION_COLUMNS, pk="id", if_not_exists=True)
                db["calibrations"].create_index(["device_key", "kind", "precision"],
                                                if_not_exists=True)
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
        self._write(lambda: self.db["runs"].insert({
            "id": run_id, "started_at": utc_now(), "finished_at": None, "status": "running",
            "error": None, "scenario": scenario, "preset": preset, "variant": variant,
            "device": device, "device_type": device_type,
            "attention_convention": attention_convention, "command": command,
            "etameter_version": environment.get("etameter_version"),
            "config": json.dumps(config, sort_keys=True),
            "environment": json.dumps(environment, sort_keys=True, default=str),
        }))
        return run_id

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
                          trace: tuple[tuple[float, float], ...]) -> None:
        """Store a window's power trace; times are relative to its first sample."""
        if not trace:
            return
        t0 = trace[0][0]
        rows = [{"run_id": run_id, "window": window, "device": device, "t_s": t - t0,
                 "power_w": p} for t, p in trace]
        self._write(lambda: self.db["power_samples"].insert_all(rows, batch_size=1000))

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
            return _decode_run(self.db["runs"].get(run_id))
        except sqlite_utils.db.NotFoundError as e:
            raise StoreError(f"no run with id {run_id} in {self.path}") from e

    def results(self, run_id: str) -> list[dict]:
        """The results of one run, in window order."""
        rows = self.db["results"].rows_where("run_id = ?", [run_id], order_by="window, id")
        return [_decode_result(r) for r in rows]

    def runs(self, status: str | None = None) -> list[dict]:
        """Every run, oldest first, each with its results (a list, possibly empty)."""
        where, args = (None, None) if status is None else ("status = ?", [status])
        runs = [_decode_run(r) for r in self.db["runs"].rows_where(where, args,
                                                                     order_by="started_at")]
        by_run: dict[str, list] = {r["id"]: [] for r in runs}
        for res in self.db["results"].rows_where(order_by="id"):
            if res["run_id"] in by_run:
                by_run[res["run_id"]].append(_decode_result(res))
        for r in runs:
            r["results"] = by_run[r["id"]]
        return runs

    def close(self) -> None:
        self.db.conn.close()


def _decode_run(row: dict) -> dict:
    row = dict(row)
    for key in ("config", "environment", "summary"):
        row[key] = json.loads(row[key]) if row.get(key) else {}
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
