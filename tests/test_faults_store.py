"""Faults against the store (issue 15): nothing lost, nothing poisoned, every bad input a clear
error. The store's good behaviour (concurrent writers, killed writers, refusing newer or
corrupt files) stays covered in test_store.py and test_store_concurrency.py."""

import json
import os
import sqlite3
import stat
import threading

import pytest

from profiler.errors import ConfigError, StoreError
from profiler.store import Store
from profiler.store.transfer import export_runs, import_file, merge


def add_run(store, variant="fp32", status="ok", windows=2):
    run_id = store.start_run(scenario="train", preset="tiny", variant=variant, device="cpu",
                             device_type="cpu", attention_convention="full", config={},
                             environment={"host": "h"})
    for w in range(windows):
        store.add_result(run_id, {"window": w, "steps": 1, "duration_s": 1.0,
                                  "tokens_per_s": 10.0 + w, "detail": {"pad": "x" * 200}})
    store.finish_run(run_id, status)
    return run_id


# -- 1. data loss ----------------------------------------------------------------------------

def test_export_never_writes_onto_its_database(db_path):
    store = Store(db_path)
    add_run(store)
    before = open(db_path, "rb").read()
    with pytest.raises(ConfigError, match="the database this command reads"):
        export_runs(store, store.runs(), db_path, "json", force=True)
    assert open(db_path, "rb").read() == before


def test_export_does_not_replace_a_file_without_force(db_path, tmp_path):
    store = Store(db_path)
    add_run(store)
    out = tmp_path / "out.json"
    out.write_text("keep me")
    with pytest.raises(ConfigError, match="exists: pass --force"):
        export_runs(store, store.runs(), out)
    assert out.read_text() == "keep me"
    export_runs(store, store.runs(), out, force=True)
    assert json.loads(out.read_text())["etameter_export"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_export_never_replaces_a_database_even_with_force(db_path, tmp_path):
    store = Store(db_path)
    add_run(store)
    other = tmp_path / "other.db"
    Store(str(other))
    with pytest.raises(ConfigError, match="existing SQLite database"):
        export_runs(store, store.runs(), other, "json", force=True)


# -- 2. damaged files ------------------------------------------------------------------------

def _damage(path):
    Store(path).db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek((size // 4096 // 2) * 4096 + 100)
        f.write(b"\xff\x00\x13" * 170)


def test_a_damaged_file_is_refused_for_writing_with_the_way_to_recover(db_path):
    store = Store(db_path)
    for _ in range(20):
        add_run(store, windows=15)
    store.close()
    _damage(db_path)
    with pytest.raises(StoreError, match=r"damaged.*\.recover"):
        Store(db_path)
    with pytest.raises(StoreError, match="cannot read.*recover"):
        Store(db_path, write=False).runs()


# -- 3. poisoned imports ---------------------------------------------------------------------

def _export(store, tmp_path):
    path = tmp_path / "good.json"
    export_runs(store, store.runs(), path)
    return json.loads(path.read_text())


@pytest.mark.parametrize("poison, message", [
    (lambda d: d["runs"][0].update(status="pwned"), r"runs\[0\]\.status: 'pwned' is not a run status"),
    (lambda d: d["runs"][0].update(id=None), r"runs\[0\]\.id: missing"),
    (lambda d: d["runs"][0].update(config="{not json"), r"runs\[0\]\.config: not valid JSON"),
    (lambda d: d["runs"][0].update(summary="[1, 2]"), r"runs\[0\]\.summary: a JSON object expected"),
    (lambda d: d["results"][0].update(tokens_per_s="fast"), r"results\[0\]\.tokens_per_s: 'fast' is not a number"),
    (lambda d: d["results"][0].update(window=2 ** 70), r"results\[0\]\.window: .* does not fit"),
    (lambda d: d["results"][0].update(run_id="elsewhere"), r"results\[0\]\.run_id: 'elsewhere' is not a run"),
    (lambda d: d.update(runs={"a": 1}), r"runs: a list of rows expected"),
    (lambda d: d["runs"].append([1, 2]), r"runs\[1\]: a row \(object\) expected"),
    (lambda d: d["runs"][0].update(config=json.dumps(
        {"a": json.loads("[" * 80 + "]" * 80)})), r"nested deeper"),
])
def test_import_refuses_a_poisoned_file_and_writes_nothing(db_path, tmp_path, poison, message):
    source = Store(str(tmp_path / "src.db"))
    add_run(source)
    data = _export(source, tmp_path)
    poison(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    target = Store(db_path)
    with pytest.raises(StoreError, match=message):
        import_file(target, bad)
    assert target.runs() == []


def test_reading_survives_a_row_it_cannot_read_and_names_it(db_path):
    store = Store(db_path)
    good, bad = add_run(store), add_run(store)
    store.db.execute("update runs set summary = '{broken' where id = ?", [bad])
    runs = {r["id"]: r for r in store.runs()}
    assert "unreadable" not in runs[good]
    assert "summary is not valid JSON" in runs[bad]["unreadable"]
    assert f"etameter delete {bad[:8]}" in runs[bad]["unreadable"]


def test_delete_removes_a_run_with_everything_it_owns(db_path):
    store = Store(db_path)
    keep, gone = add_run(store), add_run(store, status="failed")
    store.add_power_samples(gone, 0, "cpu", ((0.0, 1.0), (1.0, 2.0)))
    assert store.delete_runs([gone]) == 1
    assert [r["id"] for r in store.runs()] == [keep]
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from results where run_id = ?", [gone]).fetchone() == (0,)
    assert conn.execute("select count(*) from power_samples").fetchone() == (0,)
    with pytest.raises(StoreError, match="no run with id"):
        store.delete_runs(["feedface"])


# -- 8. filters ------------------------------------------------------------------------------

def test_dates_are_parsed_strictly(db_path):
    store = Store(db_path)
    add_run(store)
    for option, value in (("since", "garbage"), ("until", "garbage"), ("since", "2d ago")):
        with pytest.raises(ConfigError, match=f"--{option} .* is not a date"):
            store.runs(**{option: value})
    assert len(store.runs(since="1d")) == 1 and store.runs(until="1d") == []
    assert len(store.runs(until="2999-01-01")) == 1 and store.runs(since="2999-01-01") == []


def test_names_match_literally_not_as_wildcards(db_path):
    store = Store(db_path)
    add_run(store)
    assert store.runs(device="%") == [] and store.runs(device="_") == []
    assert len(store.runs(device="cpu")) == 1
    with pytest.raises(ConfigError, match="not a run id"):
        store.find_run("%")


# -- 9. reading while others write -------------------------------------------------------------

def test_reports_read_one_snapshot_while_others_write(db_path):
    store = Store(db_path)
    add_run(store)
    stop = threading.Event()

    def writer():
        w = Store(db_path)
        while not stop.is_set():
            add_run(w, windows=3)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        reader = Store(db_path, write=False)
        for _ in range(30):
            for run in reader.runs():
                assert isinstance(run["results"], list)
    finally:
        stop.set()
        thread.join()


# -- 11. clear messages instead of tracebacks ---------------------------------------------------

def test_reading_a_missing_database_does_not_create_it(tmp_path):
    path = tmp_path / "nope.db"
    with pytest.raises(StoreError, match="no database at .*run etameter bench first"):
        Store(str(path), write=False)
    assert not path.exists()
    with pytest.raises(ConfigError, match="no such database"):
        merge([str(path)], str(tmp_path / "into.db"))
    assert not (tmp_path / "into.db").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_database_in_a_read_only_folder_is_read_not_called_invalid(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    add_run(Store(str(folder / "e.db")))
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert len(Store(str(folder / "e.db"), write=False).runs()) == 1
    finally:
        os.chmod(folder, stat.S_IRWXU)


@pytest.mark.parametrize("value, message", [("abc", "not a number"), ("-1", "not a valid version")])
def test_a_bad_schema_version_is_refused_and_not_rewritten(db_path, value, message):
    Store(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("update meta set value = ? where key = 'schema_version'", [value])
    conn.commit()
    with pytest.raises(StoreError, match=message):
        Store(db_path)
    assert conn.execute("select value from meta").fetchone() == (value,)


def test_import_of_json_as_csv_says_what_it_is(db_path, tmp_path):
    source = Store(str(tmp_path / "src.db"))
    add_run(source)
    path = tmp_path / "x.json"
    export_runs(source, source.runs(), path)
    with pytest.raises(StoreError, match="not an etameter CSV"):
        import_file(Store(db_path), path, "csv")
