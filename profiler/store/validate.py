"""Checking records before they are imported or merged: one bad row must not poison a database.

Every row of every table is checked against the schema (types, ranges, known statuses, JSON
columns that decode to objects) before anything is written; the first bad field is named
(``runs[3].status: 'pwned' is not a run status ...``) and the whole file is refused. Then every
figure passes the store's one gate (:func:`profiler.store.gate.check_records`): values that
cannot be true (an MFU of 57, a negative eta, a date in the future) are refused the same way.
"""

from __future__ import annotations

import json
import math

from profiler.errors import StoreError
from profiler.store.gate import check_records

INT64 = 2 ** 63
#: JSON text columns that must decode to an object (or be empty, or null).
JSON_COLUMNS = {"runs": ("config", "summary"), "results": ("detail",),
                "environments": ("json",), "devices": ("evidence",),
                "calibrations": ("detail", "environment")}
#: Columns that must be present and non-empty text, per table.
#: Result figures that can be negative (net-of-idle energy); every other number is >= 0.
SIGNED = {"energy_net_j"}
KEYS = {"runs": ("id", "status", "started_at"), "results": ("run_id",),
        "power_samples": ("run_id", "device"), "environments": ("id", "json"),
        "devices": ("key",), "calibrations": ("id", "device_key", "kind")}
MAX_JSON_DEPTH = 64


def _depth(value, level: int = 0) -> int:
    """How deeply ``value`` nests objects and lists (a scalar: 0, ``{}``: 1, ``[[]]``: 2),
    walked without recursion and stopping past ``MAX_JSON_DEPTH``."""
    deepest = level
    stack = [(value, level)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth) for c in children if isinstance(c, (dict, list)))
    return deepest


def _check_value(where: str, value, kind: type) -> None:
    if value is None:
        return
    if kind is str:
        if not isinstance(value, str):
            raise StoreError(f"{where}: {value!r} is not text")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise StoreError(f"{where}: {value!r} is not a whole number")
        if not -INT64 <= value < INT64:
            raise StoreError(f"{where}: {value} does not fit a 64-bit integer")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StoreError(f"{where}: {value!r} is not a number")
        if not math.isfinite(value) or (isinstance(value, int) and not -INT64 <= value < INT64):
            raise StoreError(f"{where}: {value!r} is not a finite number")


def _check_json(where: str, text) -> None:
    if text is None or text == "":
        return
    if not isinstance(text, str):
        raise StoreError(f"{where}: JSON text expected, got {type(text).__name__}")
    try:
        value = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError) as e:
        raise StoreError(f"{where}: not valid JSON ({str(e)[:80]})") from None
    if value is not None and not isinstance(value, dict):
        raise StoreError(f"{where}: a JSON object expected, got {type(value).__name__}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise StoreError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _json_checker():
    """A fast first check of JSON text columns, in SQLite: text that is strict JSON (no NaN or
    Infinity) with an object or null at the top, and too few brackets to nest deeper than
    ``MAX_JSON_DEPTH``, passes; anything else goes through ``_check_json``, which names the
    problem (or passes it: the Python check is the rule, this only skips its work)."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    query = "select case when json_valid(?1) then json_type(?1) in ('object', 'null') end"

    def check(where: str, text) -> None:
        if text is None or text == "":
            return
        if (isinstance(text, str) and text.count("{") + text.count("[") <= MAX_JSON_DEPTH
                and conn.execute(query, (text,)).fetchone()[0] == 1):
            return
        _check_json(where, text)

    return check


def _check_time(where: str, text: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise StoreError(f"{where}: {text!r} is not an ISO date and time") from None


def validate_records(records, columns: dict[str, dict[str, type]], statuses: tuple) -> None:
    """Raise StoreError naming the first field of ``records`` that the schema (``columns``:
    table -> column -> type) does not allow; write nothing."""
    if not isinstance(records, dict):
        raise StoreError(f"records must be a JSON object, got {type(records).__name__}")
    version = records.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise StoreError(f"schema_version: {version!r} is not a schema version")
    run_ids = set()
    check_json = _json_checker()
    for table, types in columns.items():
        rows = records.get(table, [])
        if not isinstance(rows, list):
            raise StoreError(f"{table}: a list of rows expected, got {type(rows).__name__}")
        unsigned = ({k for k, kind in types.items() if kind in (int, float) and k not in SIGNED}
                    if table in ("results", "power_samples", "calibrations") else set())
        for i, row in enumerate(rows):
            where = f"{table}[{i}]"
            if not isinstance(row, dict):
                raise StoreError(f"{where}: a row (object) expected, got {type(row).__name__}")
            for key in KEYS.get(table, ()):
                if not isinstance(row.get(key), str) or not row[key]:
                    raise StoreError(f"{where}.{key}: missing or not text ({row.get(key)!r})")
            for key, value in row.items():
                kind = types.get(key)
                if value is None or kind is None:
                    continue
                t = type(value)  # the common cases inline; _check_value names any problem
                if not ((t is float and kind is float and math.isfinite(value))
                        or (t is str and kind is str)
                        or (t is int and kind is not str and -INT64 <= value < INT64)):
                    _check_value(f"{where}.{key}", value, kind)
                if key in unsigned and value < 0:
                    raise StoreError(f"{where}.{key}: {value!r} is negative; it cannot be")
            for key in JSON_COLUMNS.get(table, ()):
                check_json(f"{where}.{key}", row.get(key))
            if table == "runs":
                _check_time(f"{where}.started_at", row["started_at"])
                if row["status"] not in statuses:
                    raise StoreError(f"{where}.status: {row['status']!r} is not a run status "
                                     f"({', '.join(statuses)})")
                run_ids.add(row["id"])
    for table in ("results", "power_samples"):
        for i, row in enumerate(records.get(table, [])):
            if row["run_id"] not in run_ids:
                raise StoreError(f"{table}[{i}].run_id: {row['run_id']!r} is not a run in "
                                 "these records")
    check_records(records, lambda text: json.loads(text) if text else None)
