"""Reading runs and results back, decoded: JSON columns as dicts, flags as a list, bools."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
from datetime import datetime, timedelta, timezone

import sqlite_utils

from profiler.errors import ConfigError, StoreError
from profiler.store.schema import BOOL_COLUMNS, LIST_COLUMNS
from profiler.store.summary_columns import DERIVED_COLUMNS

RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WHEN_HELP = ("use an ISO date (2026-11-23), a date and time (2026-11-23T14:00, UTC unless it "
             "names a zone), or an age like 30m, 12h, 2d, 1w")


def parse_when(text: str, option: str, *, end: bool = False) -> str:
    """A ``--since``/``--until`` value as the UTC ISO text runs are stored with; a bare date
    given as ``--until`` (``end``) means the end of that day. Anything else is a ConfigError."""
    text = (text or "").strip()
    if m := RELATIVE.match(text):
        try:
            when = datetime.now(timezone.utc) - timedelta(**{UNITS[m.group(2)]: float(m.group(1))})
        except (OverflowError, ValueError):
            raise ConfigError(f"{option} {text!r} reaches outside the calendar: {WHEN_HELP}") from None
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{option} {text!r} is not a date: {WHEN_HELP}") from None
        when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
        if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                when += timedelta(days=1)
            except OverflowError:  # the last day of the calendar: every run is before it
                when = datetime.max.replace(tzinfo=timezone.utc)
    return when.isoformat(timespec="milliseconds")


def like_literal(text: str) -> str:
    """``text`` for a LIKE ... ESCAPE '\\' pattern, with %, _ and \\ matched literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Reading:
    """The reading side of :class:`profiler.store.db.Store` (a mixin: it uses ``db`` and
    ``path``)."""

    def get_run(self, run_id: str) -> dict:
        with self._snapshot():
            try:
                row = self.db["runs"].get(run_id)
            except sqlite_utils.db.NotFoundError as e:
                raise StoreError(f"no run with id {run_id} in {self.path}") from e
            return _decode_run(row, self._environments([row.get("environment_id")]))

    @contextlib.contextmanager
    def _snapshot(self):
        """Several reads that see one state of the file, whatever writers do meanwhile."""
        conn = self.db.conn
        outer = conn.in_transaction
        try:
            if not outer:
                conn.execute("BEGIN")
            try:
                yield
            finally:
                if not outer and conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot read {self.path}: {e}; recover what can be read with "
                             f"`sqlite3 {self.path} .recover | sqlite3 recovered.db`") from e

    def find_run(self, prefix: str) -> dict:
        """The one run whose id starts with ``prefix`` (ids are long: a few characters do)."""
        if not prefix or not re.fullmatch(r"[0-9a-fA-F]+", prefix):
            raise ConfigError(f"run id {prefix!r} is not a run id: ids are hexadecimal (see "
                              "etameter report)")
        rows = self.db.execute("select id from runs where id like ?",
                               [prefix.lower() + "%"]).fetchall()
        if len(rows) != 1:
            raise StoreError(f"run id {prefix!r} matches {len(rows)} runs in {self.path}: "
                             + ("give more of it" if rows else "see etameter report"))
        with self._snapshot():
            return self.get_run(rows[0][0]) | {"results": self.results(rows[0][0])}

    def _environments(self, ids) -> dict[str, dict]:
        ids = [i for i in set(ids) if i]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"select id, json from environments where id in ({marks})", ids)
        return {i: _json_object(text, "environment", []) for i, text in rows.fetchall()}

    def results(self, run_id: str) -> list[dict]:
        """The results of one run, in window order."""
        with self._snapshot():
            rows = list(self.db["results"].rows_where("run_id = ?", [run_id], order_by="window, id"))
        return [_decode_result(r) for r in rows]

    def runs(self, status: str | None = None, *, preset: str | None = None,
             scenario: str | None = None, variant: str | None = None, device: str | None = None,
             since: str | None = None, until: str | None = None) -> list[dict]:
        """Runs, oldest first, each with its results (a list, possibly empty).

        Filters: exact ``status``, ``preset``, ``scenario``, ``variant``; ``device`` matches
        part of the device name or key literally (any case; ``%`` and ``_`` are characters);
        ``since``/``until`` are parsed strictly (:func:`parse_when`) and compared with the
        start time (``until`` a date includes that whole day). Runs and results are read in
        one snapshot (``Query.iter_runs``, which streams them).
        """
        return list(self.iter_runs(status=status, preset=preset, scenario=scenario,
                                   variant=variant, device=device, since=since, until=until,
                                   with_results=True))


def process_gone(run: dict) -> bool:
    """True for a ``running`` run whose process, on this host, no longer exists: it died
    without recording an ending (killed, or the machine lost power)."""
    if run.get("status") != "running" or run.get("host") != socket.gethostname() or not run.get("pid"):
        return False
    import psutil

    return not psutil.pid_exists(run["pid"])


def _json_object(text, what: str, problems: list[str]) -> dict:
    """Decoded JSON text, or {} with the problem noted: one unreadable row must not stop a
    report; it is named instead."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError) as e:
        problems.append(f"{what} is not valid JSON ({str(e)[:60]})")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{what} is not a JSON object")
        return {}
    return value


def _decode_run(row: dict, environments: dict[str, dict] | None = None) -> dict:
    row = {k: v for k, v in row.items() if k not in DERIVED_COLUMNS}  # an index, not data
    problems: list[str] = []
    for key in ("config", "summary"):
        row[key] = _json_object(row.get(key), key, problems)
    if problems:
        row["unreadable"] = ("; ".join(problems) + f": remove it with etameter delete "
                             f"{str(row.get('id'))[:8]}")
    row["environment"] = (environments or {}).get(row.get("environment_id"), {})
    if row.get("quality_ok") is not None:
        row["quality_ok"] = bool(row["quality_ok"])
    return row


def _decode_result(row: dict) -> dict:
    row = dict(row)
    problems: list[str] = []
    row["detail"] = _json_object(row.get("detail"), "detail", problems)
    if problems:
        row["detail"] = {"unreadable": problems[0]}
    for key in LIST_COLUMNS:
        row[key] = [f for f in str(row.get(key) or "").split(",") if f]
    for key in BOOL_COLUMNS:
        if row.get(key) is not None:
            row[key] = bool(row[key])
    return row
