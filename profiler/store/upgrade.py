"""Older schemas, read without writing to them: a database or an export of any schema the
frozen migrations (``profiler.store.schema.MIGRATIONS``) can upgrade reads like a current one.

- A reading command (``Store(path, write=False)``) on an older file reads a *migrated copy*:
  the file is copied with SQLite's backup API into a temporary database, the migrations run
  on the copy, and the copy is removed when the store is closed or the process ends. The
  file itself is never written (a reading command does not write the database it reads); the
  next writer migrates it in place.
- Records of an older export (``schema_version`` below the current one) are loaded into an
  in-memory database at their own version, migrated, and read back as current records.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import weakref

import sqlite_utils

from profiler.errors import StoreError
from profiler.store.schema import SCHEMA_VERSION, migrate


def migrated_copy(conn: sqlite3.Connection, path: str) -> sqlite_utils.Database:
    """A temporary copy of the database on ``conn`` (read from ``path``), migrated to the
    current schema; removed on close or at exit."""
    fd, tmp = tempfile.mkstemp(prefix="etameter-read-", suffix=".db")
    os.close(fd)
    copy = sqlite3.connect(tmp, isolation_level=None)
    db = sqlite_utils.Database(copy)
    cleanup = weakref.finalize(db, _remove, tmp)  # also at exit
    try:
        conn.backup(copy)
        copy.execute("PRAGMA journal_mode=OFF")  # a throwaway copy: no journal beside it
        migrate(db, SCHEMA_VERSION)
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:
        copy.close()
        _remove(tmp)
        raise StoreError(f"cannot read {path}: migrating a copy of it to schema "
                         f"{SCHEMA_VERSION} failed ({str(e)[:200]}); open it once with a "
                         "writing command (etameter bench, import) to see why") from None
    conn.close()
    db.remove_copy = cleanup  # Store.close() removes the copy at once
    return db


def _remove(tmp: str) -> None:
    for name in (tmp, tmp + "-journal"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


def upgrade_records(records: dict) -> dict:
    """Records (``Store.run_records`` of an older etameter) in the current schema: loaded at
    their own ``schema_version`` into memory, migrated, and read back. Current records are
    returned as they are."""
    found = records.get("schema_version", SCHEMA_VERSION)
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise StoreError(f"schema_version {found!r} is not a schema version: is this an "
                         "etameter export?")
    if found >= SCHEMA_VERSION:
        return records
    from profiler.store.records import TABLES

    db = sqlite_utils.Database(memory=True)
    migrate(db, found)
    try:
        for table in TABLES:
            rows = records.get(table) or []
            if table not in db.table_names() or not rows:
                continue
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise StoreError(f"{table}: a list of objects expected")
            columns = db[table].columns_dict
            unknown = set().union(*(r.keys() for r in rows)) - set(columns)
            if unknown:
                raise StoreError(f"{table} records have columns schema {found} did not have: "
                                 f"{sorted(unknown)[:5]}")
            db[table].insert_all(rows, pk=None)
        migrate(db, SCHEMA_VERSION)
    except (sqlite3.DatabaseError, TypeError, ValueError, KeyError) as e:
        raise StoreError(f"these records of schema {found} cannot be upgraded to schema "
                         f"{SCHEMA_VERSION}: {str(e)[:200]}") from None
    out = {k: v for k, v in records.items() if k not in TABLES}
    out["schema_version"] = SCHEMA_VERSION
    for table in TABLES:
        if table in db.table_names():
            out[table] = [{k: v for k, v in r.items() if not (table == "results" and k == "id")}
                          for r in db[table].rows]
    return out
