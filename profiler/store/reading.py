"""Reading runs and results back, decoded: JSON columns as dicts, flags as a list, bools."""

from __future__ import annotations

import json
import socket

import sqlite_utils

from profiler.errors import StoreError
from profiler.store.schema import BOOL_COLUMNS, LIST_COLUMNS


class Reading:
    """The reading side of :class:`profiler.store.db.Store` (a mixin: it uses ``db`` and
    ``path``)."""

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
    for key in LIST_COLUMNS:
        row[key] = [f for f in (row.get(key) or "").split(",") if f]
    for key in BOOL_COLUMNS:
        if row.get(key) is not None:
            row[key] = bool(row[key])
    return row
