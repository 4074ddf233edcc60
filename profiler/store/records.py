"""Records: what export, import and merge move between databases, as plain stored rows."""

from __future__ import annotations

import sqlite3

from profiler.errors import StoreError
from profiler.store.schema import SCHEMA_VERSION
from profiler.store.summary_columns import DERIVED_COLUMNS
from profiler.store.validate import validate_records

TABLES = ("runs", "results", "power_samples", "environments", "devices", "calibrations")


class Records:
    """``run_records`` and ``add_records`` of :class:`profiler.store.db.Store` (a mixin: it
    uses the store's ``db``, ``path`` and ``runs``)."""

    def run_records(self, runs: list[dict] | None = None) -> dict:
        """Everything stored about ``runs`` (default: all), as plain rows, self-contained."""
        if runs is None:
            ids = [r[0] for r in self.db.execute("select id from runs order by started_at, rowid")]
        else:
            ids = [r["id"] for r in runs]
        with self._snapshot():
            records = {"schema_version": SCHEMA_VERSION, "runs": [], "results": [],
                       "power_samples": [], "environments": [], "devices": [],
                       "calibrations": list(self.db["calibrations"].rows)}
            for start in range(0, len(ids), 500):
                for table, rows in self.records_of(ids[start:start + 500]).items():
                    records[table] += rows
        env_ids = {r["environment_id"] for r in records["runs"] if r.get("environment_id")}
        device_keys = {r["device_key"] for r in records["runs"] if r.get("device_key")}
        records["environments"] = [e for e in self.db["environments"].rows if e["id"] in env_ids]
        records["devices"] = [d for d in self.db["devices"].rows if d["key"] in device_keys]
        return records

    def records_of(self, run_ids: list[str],
                   tables=("runs", "results", "power_samples")) -> dict[str, list[dict]]:
        """The stored rows of these runs (at most a few hundred: one query per table), in the
        order of ``run_ids``: runs (without their derived columns), results (without their
        row ids) and power samples."""
        marks = ",".join("?" * len(run_ids))
        order = {i: n for n, i in enumerate(run_ids)}

        def rows(table: str, column: str, by: str) -> list[dict]:
            cursor = self.db.execute(f'select * from "{table}" where {column} in ({marks}) '
                                     f"order by {by}", run_ids)
            names = [d[0] for d in cursor.description]
            found = [dict(zip(names, r)) for r in cursor]
            return sorted(found, key=lambda r: order[r[column]])  # stable: keeps `by` within

        out = {}
        if "runs" in tables:
            out["runs"] = [{k: v for k, v in r.items() if k not in DERIVED_COLUMNS}
                           for r in rows("runs", "id", "rowid")]
        if "results" in tables:
            out["results"] = [{k: v for k, v in r.items() if k != "id"}
                              for r in rows("results", "run_id", "id")]
        if "power_samples" in tables:
            out["power_samples"] = rows("power_samples", "run_id", "rowid")
        return out

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
