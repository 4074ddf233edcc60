"""The store keeps every run, refuses what it cannot read, and never overwrites a file."""

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
