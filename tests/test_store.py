"""The store keeps every run, refuses what it cannot read, and never overwrites a file."""

import json
import sqlite3

import pytest

from profiler.errors import StoreError
from profiler.store import SCHEMA_VERSION, Store


def start(store, **kw):
    return store.start_run(scenario="train", preset="tiny", variant="fp32", device="cpu",
                           device_type="cpu", attention_convention="full",
                           config={"a": 1}, environment={"etameter_version": "0"}, **kw)


def test_run_lifecycle(db_path):
    store = Store(db_path)
    run_id = start(store)
    assert store.get_run(run_id)["status"] == "running"
    store.add_result(run_id, {"window": 0, "steps": 3, "mfu": None, "mfu_reason": "why",
                              "flags": ["estimated"], "energy_estimated": True,
                              "detail": {"x": 1}, "unknown_key": 2})
    store.finish_run(run_id, "ok")
    run = Store(db_path).runs()[0]
    assert run["status"] == "ok" and run["finished_at"]
    res = run["results"][0]
    assert res["flags"] == ["estimated"] and res["energy_estimated"] is True
    assert res["detail"] == {"x": 1, "unknown_key": 2}
    assert res["mfu"] is None and res["mfu_reason"] == "why"


def test_default_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ETAMETER_DB", str(tmp_path / "env.db"))
    assert Store().path == str(tmp_path / "env.db")


def test_corrupt_file_is_refused_and_kept(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a valid SQLite database"):
        Store(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_newer_schema_is_refused(db_path):
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("update meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer etameter"):
        Store(db_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "x.db")


def test_unknown_run_id(db_path):
    with pytest.raises(StoreError, match="no run with id"):
        Store(db_path).get_run("abc")


def test_a_version_1_database_is_migrated_with_its_data(tmp_path):
    """A file written by schema 1 (environment inline in runs) opens, migrates, keeps all."""
    import json

    import sqlite_utils

    from profiler.store import MIGRATIONS

    path = tmp_path / "v1.db"
    db = sqlite_utils.Database(path)
    MIGRATIONS[0](db)
    db["meta"].insert({"key": "schema_version", "value": "1"}, pk="key", replace=True)
    db["runs"].insert({"id": "r1", "started_at": "2026-01-01T00:00:00", "status": "ok",
                       "device": "AMD EPYC", "device_type": "cpu",
                       "config": json.dumps({"device": {"key": "cpu:h:AMD EPYC", "profile": "p"}}),
                       "environment": json.dumps({"host": "h", "torch_version": "2.13"})})
    db["results"].insert({"run_id": "r1", "window": 0, "tokens_per_s": 5.0})
    db.conn.close()

    store = Store(path)
    run = store.get_run("r1")
    assert run["environment"] == {"host": "h", "torch_version": "2.13"}
    assert run["device_key"] == "cpu:h:AMD EPYC" and run["host"] == "h"
    assert store.results("r1")[0]["tokens_per_s"] == 5.0
    assert [d["key"] for d in store.devices()] == ["cpu:h:AMD EPYC"]
    assert "environment" not in store.db["runs"].columns_dict


def test_a_foreign_sqlite_file_is_not_written_into(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("create table customers (id integer)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an etameter one"):
        Store(path)
    assert sqlite3.connect(path).execute("select name from sqlite_master").fetchall() == [("customers",)]


def _schema_3_file(path):
    """A file as the schema-3 code wrote it: migrations 1 to 3 only, no later record column."""
    import sqlite_utils

    from profiler.store import MIGRATIONS

    db = sqlite_utils.Database(path)
    for migration in MIGRATIONS:
        migration(db)
    db["meta"].insert({"key": "schema_version", "value": str(len(MIGRATIONS))}, pk="key",
                      replace=True)
    return db


def test_migrations_are_frozen_whatever_the_record(tmp_path):
    from profiler.store.schema import RESULT_COLUMNS_V1, RESULT_COLUMNS_V3

    db = _schema_3_file(tmp_path / "v3.db")
    assert set(db["results"].columns_dict) == set(RESULT_COLUMNS_V1) | set(RESULT_COLUMNS_V3)


def test_a_schema_3_file_gets_the_record_columns_it_lacks_when_opened(tmp_path):
    from profiler.measurement import ROW_COLUMNS

    path = tmp_path / "v3.db"
    db = _schema_3_file(path)
    assert set(ROW_COLUMNS) - set(db["results"].columns_dict)  # the record grew since
    db["results"].add_column("retired_metric", float)  # a column the record no longer has
    db["runs"].insert({"id": "r1", "started_at": "2026-01-01T00:00:00", "status": "ok"})
    db["results"].insert({"run_id": "r1", "window": 0, "tokens_per_s": 5.0,
                          "retired_metric": 1.5})
    db.conn.close()

    store = Store(path)
    columns = store.db["results"].columns_dict
    assert set(ROW_COLUMNS) <= set(columns)
    assert "retired_metric" in columns  # added, never dropped
    old = store.results("r1")[0]
    assert old["tokens_per_s"] == 5.0 and old["retired_metric"] == 1.5
    assert all(old[c] is None for c in set(ROW_COLUMNS) - {"window", "tokens_per_s", "detail",
                                                          "flags"})
    new = store.add_result("r1", {"window": 1, "tokens": 64.0, "ranks": 2, "devices": 2})
    row = store.db["results"].get(new)
    assert (row["tokens"], row["ranks"], row["devices"]) == (64.0, 2, 2)
    assert json.loads(row["detail"]) == {}
    store.close()
    version = sqlite3.connect(path).execute("select value from meta").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_every_record_column_is_a_results_column_after_open(db_path):
    from profiler.measurement import ROW_COLUMNS

    for store in (Store(db_path), Store(db_path), Store(memory=True)):
        assert set(ROW_COLUMNS) | {"id", "run_id"} <= set(store.db["results"].columns_dict)
