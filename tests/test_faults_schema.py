"""Older databases (issue 22, item 9): files of every schema the frozen migrations can
upgrade are read by every reading command (report, forecast --device, export), merged and
imported, and a reading command never writes to the file it reads: it reads a migrated
temporary copy. The fixtures are built from the frozen migrations themselves."""

import hashlib
import json
import os
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from harness.cli import cli
from profiler.store import MIGRATIONS, SCHEMA_VERSION, Store

SUMMARY = {"eta_flops_per_j": 2.5e9, "tokens_per_s": 100.0, "mfu": 0.3,
           "energy_method": "rapl", "energy_estimated": False}


def old_database(path, version: int, run_id: str = "a1" * 16):
    """A file as the schema-``version`` code wrote it, with one ok run and a window."""
    db = sqlite_utils.Database(path)
    for migration in MIGRATIONS[:version]:
        migration(db)
    db["meta"].insert({"key": "schema_version", "value": str(version)}, pk="key", replace=True)
    run = {"id": run_id, "started_at": "2026-01-01T00:00:00+00:00",
           "finished_at": "2026-01-01T00:01:00+00:00", "status": "ok", "scenario": "train",
           "preset": "tiny", "variant": "fp32", "device": "AMD EPYC 7B13", "device_type": "cpu",
           "attention_convention": "full", "summary": json.dumps(SUMMARY),
           "config": json.dumps({"device": {"key": "cpu:h:AMD EPYC 7B13", "profile": "p"}})}
    env = {"host": "h", "torch_version": "2.13"}
    if version == 1:
        run["environment"] = json.dumps(env)
    else:
        db["environments"].insert({"id": "e1", "json": json.dumps(env)}, pk="id")
        run.update(environment_id="e1", device_key="cpu:h:AMD EPYC 7B13", pid=1, host="h")
    db["runs"].insert(run)
    db["results"].insert({"run_id": run_id, "window": 0, "tokens_per_s": 100.0,
                          "eta_flops_per_j": 2.5e9, "duration_s": 1.0})
    db.conn.close()
    return Path(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


OLD = list(range(1, SCHEMA_VERSION))  # every schema older than the current one


@pytest.mark.parametrize("version", OLD)
def test_reading_commands_read_an_old_file_without_writing_it(tmp_path, version):
    path = old_database(tmp_path / f"v{version}.db", version)
    before = digest(path)
    doc = json.loads(ok("report", "--db", path, "--json").stdout)
    assert [r["status"] for r in doc["runs"]] == ["ok"]
    assert doc["runs"][0]["device_key"] == "cpu:h:AMD EPYC 7B13"
    assert doc["runs"][0]["environment"]["torch_version"] == "2.13"
    ok("report", "--db", path)
    ok("forecast", "--device", "EPYC", "--params", "1e9", "--tokens", "2e10", "--db", path)
    ok("export", tmp_path / "out.json", "--db", path)
    assert digest(path) == before
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, "out.json"])
    assert Store(path, write=False).db.execute(
        "select value from meta where key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    conn = sqlite_utils.Database(path)
    assert conn["meta"].get("schema_version")["value"] == str(version)  # the file: unchanged


def test_the_migrated_copy_is_removed_on_close(tmp_path):
    store = Store(old_database(tmp_path / "v1.db", 1), write=False)
    copy = store.db.execute("pragma database_list").fetchone()[2]
    assert copy and os.path.exists(copy) and copy != str(tmp_path / "v1.db")
    store.close()
    assert not os.path.exists(copy)


def test_old_files_merge_into_a_new_one(tmp_path):
    v1 = old_database(tmp_path / "v1.db", 1, "b1" * 16)
    v2 = old_database(tmp_path / "v2.db", 2, "b2" * 16)
    before = digest(v1), digest(v2)
    ok("merge", v1, v2, "--into", tmp_path / "all.db")
    runs = Store(tmp_path / "all.db", write=False).runs()
    assert sorted(r["id"] for r in runs) == ["b1" * 16, "b2" * 16]
    assert all(r["environment"]["torch_version"] == "2.13" for r in runs)
    assert (digest(v1), digest(v2)) == before


def test_an_old_file_merges_into_another_old_file(tmp_path):
    v1 = old_database(tmp_path / "v1.db", 1, "c1" * 16)
    into = old_database(tmp_path / "into.db", 1, "c2" * 16)
    ok("merge", v1, "--into", into)  # the target is a writer: it is migrated in place
    assert len(Store(into, write=False).runs()) == 2


@pytest.mark.parametrize("version", OLD)
def test_an_export_of_an_old_schema_imports(tmp_path, version):
    src = old_database(tmp_path / "old.db", version)
    raw = sqlite_utils.Database(src)
    records = {"etameter_export": 1, "schema_version": version,
               **{t: list(raw[t].rows) for t in ("runs", "results") if t in raw.table_names()}}
    for r in records["results"]:
        r.pop("id", None)
    if version >= 2:
        records["environments"] = list(raw["environments"].rows)
    export = tmp_path / "old.json"
    export.write_text(json.dumps(records))
    db = tmp_path / "new.db"
    ok("import", export, "--db", db)
    run = Store(db, write=False).runs()[0]
    assert run["environment"]["torch_version"] == "2.13" and run["results"][0]["tokens_per_s"] == 100


def test_a_schema_1_export_with_unknown_columns_is_one_line(tmp_path):
    export = tmp_path / "bad.json"
    export.write_text(json.dumps({"etameter_export": 1, "schema_version": 1,
                                  "runs": [{"id": "d" * 32, "status": "ok", "nonsense": 1}]}))
    result = CliRunner().invoke(cli, ["import", str(export), "--db", str(tmp_path / "n.db")])
    assert result.exit_code == 1 and "nonsense" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "n.db").exists()
