"""Records: what export, import and merge move between databases, as plain stored rows."""

from __future__ import annotations

import sqlite3

from profiler.errors import StoreError
from profiler.store.schema import SCHEMA_VERSION
from profiler.store.validate import validate_records

TABLES = ("runs", "results", "power_samples", "environments", "devices", "calibrations")


class Records:
    """``run_records`` and ``add_records`` of :class:`profiler.store.db.Store` (a mixin: it
    uses the store's ``db``, ``path`` and ``runs``)."""

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
        from profiler.store.db import RUN_STATUSES
        from profiler.store.upgrade import upgrade_records

        records = upgrade_records(records)  # an older export reads as a current one
        validate_records(records, {t: self.db[t].columns_dict for t in TABLES}, RUN_STATUSES)
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
