"""Reads at fleet scale: bounded default views (a default report reads a bounded number of
runs and windows, whatever is stored), the derived columns of schema 4 (the migration keeps
every run and fills them; the SQL groups are the Python groups), the compare list view and
--group, and streamed output. Speed is the benchmark's (benchmarks/store_scale.py), not a
test's."""

import json
import sqlite3

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.store import MIGRATIONS, Store
from profiler.store import query as query_module
from profiler.store.summary_columns import DERIVED_COLUMNS, GROUP_COLUMNS
from reports.compare import GROUP_FIELDS, group_key
from tests.test_reports import add_run


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def clone_runs(db_path: str, copies: int) -> None:
    """Multiply the stored runs in SQL (each copy a sweep of its own, a minute earlier)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    run_cols = [r[1] for r in conn.execute("pragma table_info(runs)")]
    res_cols = [r[1] for r in conn.execute("pragma table_info(results)") if r[1] != "id"]
    new_id = "printf('%08x', n.i) || substr({}, 9)"
    changed = {"id": new_id.format("r.id"),
               "started_at": "strftime('%Y-%m-%dT%H:%M:%f', r.started_at, "
                             "printf('-%d minutes', n.i)) || '+00:00'",
               "config": "json_set(r.config, '$.sweep_id', printf('copy%d', n.i))"}
    seq = f"with recursive n(i) as (select 1 union all select i + 1 from n where i < {copies})"
    conn.execute("begin")
    conn.execute("create temp table r as select * from runs")
    conn.execute("create temp table x as select * from results")
    conn.execute(f"insert into runs ({', '.join(run_cols)}) {seq} select "
                 + ", ".join(changed.get(c, f"r.{c}") for c in run_cols) + " from n, temp.r r")
    conn.execute(f"insert into results ({', '.join(res_cols)}) {seq} select "
                 + ", ".join(new_id.format("x.run_id") if c == "run_id" else f"x.{c}"
                             for c in res_cols) + " from n, temp.x x")
    conn.execute("commit")
    conn.close()


@pytest.fixture
def many(db_path):
    """200 sweeps of fp32 + bf16 (400 runs, 3 windows each)."""
    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="base")
    add_run(store, "bf16", 4, 1500.0, sweep="base")
    clone_runs(db_path, 199)
    return db_path


@pytest.fixture
def counted(monkeypatch):
    """How many runs and windows the store decodes, and the SQL it runs on results."""
    counts = {"runs": 0, "windows": 0, "sql": []}
    decode_run, decode_result = query_module._decode_run, query_module._decode_result

    def run(*args):
        counts["runs"] += 1
        return decode_run(*args)

    def result(*args):
        counts["windows"] += 1
        return decode_result(*args)

    monkeypatch.setattr(query_module, "_decode_run", run)
    monkeypatch.setattr(query_module, "_decode_result", result)
    open_db = Store._open

    def traced(path, write):
        db = open_db(path, write)
        db.conn.set_trace_callback(lambda sql: counts["sql"].append(sql)
                                   if "from results" in sql.lower() else None)
        return db

    monkeypatch.setattr(Store, "_open", staticmethod(traced))
    return counts


def test_default_report_reads_a_bounded_number_of_runs_and_windows(many, counted):
    out = invoke("report", "--db", many)
    assert counted["runs"] == 50 and counted["windows"] == 0 and not counted["sql"]
    assert "showing the newest 50 of 400 selected runs" in out.output
    assert out.stdout.count("bf16") + out.stdout.count("fp32") == 50
    counted.update(runs=0, windows=0)
    invoke("report", "--db", many, "--format", "json", "--limit", "7")
    assert counted["runs"] == 7 and counted["windows"] == 7 * 3
    assert all("run_id in (" in sql for sql in counted["sql"])  # never a scan of all windows


def test_report_limit_all_and_streamed_json(many):
    doc = json.loads(invoke("report", "--db", many, "--json").stdout)
    assert len(doc["runs"]) == 400 and all(len(r["results"]) == 3 for r in doc["runs"])
    assert doc["runs"][0]["started_at"] < doc["runs"][-1]["started_at"]  # oldest first
    assert not set(DERIVED_COLUMNS) & set(doc["runs"][0])  # an index, not data
    limited = invoke("report", "--db", many, "--format", "markdown", "--limit", "3")
    assert limited.stdout.count("| ") >= 3 and "newest 3 of 400" in limited.output
    rows = invoke("report", "--db", many, "--format", "csv", "--limit", "5").stdout
    assert len(rows.strip().splitlines()) == 6
    everything = invoke("report", "--db", many, "--all", "--variant", "bf16")
    assert "showing the newest" not in everything.output


def test_compare_lists_groups_and_opens_one(many, counted):
    out = invoke("compare", "--baseline", "fp32", "--db", many)
    assert "groups of comparable runs" in out.stdout
    assert "20 of 200 group(s)" in out.stdout and "--group ID" in out.stdout
    assert counted["runs"] <= 2 * 20 + 2  # only the groups shown are read
    ids = [line.split()[1] for line in out.stdout.splitlines()
           if line.startswith("│") and "bf16: faster" in line]
    assert len(ids) == 20
    table = invoke("compare", "--baseline", "fp32", "--db", many, "--group", ids[0]).stdout
    assert "etameter compare:" in table and "1.50x" in table
    doc = json.loads(invoke("compare", "--baseline", "fp32", "--db", many, "--json",
                            "--limit", "4").stdout)
    assert doc["total_groups"] == 200 and len(doc["groups"]) == 4
    across = json.loads(invoke("compare", "--baseline", "fp32", "--across-sweeps", "--db", many,
                               "--json").stdout)
    (group,) = across["groups"]
    assert "398 earlier run(s)" in group["notes"][0] and len(group["rows"]) == 2
    bad = CliRunner().invoke(cli, ["compare", "--baseline", "fp32", "--db", many,
                                   "--group", "zz"])
    assert bad.exit_code == 1 and "matches 0 groups" in bad.output


def test_sql_groups_are_the_python_groups(db_path):
    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="A")
    add_run(store, "bf16", 8, 1000.0, sweep="A", meter="rapl", seq=128)
    add_run(store, "fp32", 4, 1000.0)  # no sweep: a sweep of its own
    add_run(store, "fp8", 4, 0, status="skipped", sweep="A")  # no meter
    run = store.start_run(scenario="train", preset="", variant="fp32", device="d",
                          device_type="cpu", attention_convention="causal",
                          config={"model": {"n_layers": 2, "d_model": 64, "n_heads": 2,
                                            "vocab_size": 99}, "meter": None},
                          environment={})
    store.db.execute("update runs set config = '{bad', device_key = '' where id = ?", [run])
    columns = [GROUP_COLUMNS[f] for f in GROUP_FIELDS]
    assert set(GROUP_FIELDS) == set(GROUP_COLUMNS)  # a new group field needs its column
    for r in store.runs():
        row = store.db.execute(f"select {', '.join(columns)} from runs where id = ?",
                               [r["id"]]).fetchone()
        assert tuple(row) == group_key(r), r["id"]


def test_migration_4_keeps_every_run_and_fills_the_columns(tmp_path):
    path = tmp_path / "v3.db"
    fresh = Store(tmp_path / "fresh.db")
    add_run(fresh, "fp32", 4, 1000.0, sweep="S")
    add_run(fresh, "bf16", 4, 1500.0, sweep="S")
    fresh.db.execute("update runs set summary = '{broken' where variant = 'bf16'")
    runs = fresh.db.execute("select * from runs").fetchall()
    cols = [d[1] for d in fresh.db.execute("pragma table_info(runs)")]
    results = fresh.db.execute("select * from results").fetchall()
    res_cols = [d[1] for d in fresh.db.execute("pragma table_info(results)")]
    import sqlite_utils

    old = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    for n, migration in enumerate(MIGRATIONS[:3]):
        migration(old)
        old["meta"].insert({"key": "schema_version", "value": str(n + 1)}, pk="key", replace=True)
    keep = [i for i, c in enumerate(cols) if c not in DERIVED_COLUMNS]
    old.conn.executemany(f"insert into runs ({', '.join(cols[i] for i in keep)}) values "
                         f"({', '.join('?' * len(keep))})", [[r[i] for i in keep] for r in runs])
    present = {c for c in old["results"].columns_dict}
    rk = [i for i, c in enumerate(res_cols) if c in present]
    old.conn.executemany(f"insert into results ({', '.join(res_cols[i] for i in rk)}) values "
                         f"({', '.join('?' * len(rk))})", [[r[i] for i in rk] for r in results])
    old.conn.close()
    # read without writing the file (profiler.store.upgrade reads a migrated temporary copy)
    reader = Store(path, write=False)
    assert [g["runs"] for g in reader.group_counts({"sweep": "sweep_id"})[0]] == [2]
    store = Store(path)
    assert store.db.execute("select value from meta").fetchone()[0] == "4"
    rows = store.db.execute("select variant, sweep_id, meter_method, tokens_per_s, model "
                            "from runs order by variant").fetchall()
    assert rows[0] == ("bf16", "S", "estimated", None, "tiny")  # its summary is unreadable
    assert rows[1][:3] == ("fp32", "S", "estimated") and rows[1][3] == pytest.approx(1010.0)
    assert len(store.runs()) == 2 and sum(len(r["results"]) for r in store.runs()) == 6
    store.set_run_summary(store.runs()[0]["id"], {"tokens_per_s": 5.0}, None)  # triggers
    assert 5.0 in [r[0] for r in store.db.execute("select tokens_per_s from runs")]


def test_export_streams_the_same_records(many, tmp_path):
    out = tmp_path / "all.json"
    invoke("export", str(out), "--db", many, "--variant", "bf16")
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) == 200 and len(doc["results"]) == 600
    assert not set(DERIVED_COLUMNS) & set(doc["runs"][0])
    target = tmp_path / "t.db"
    counts = json.loads(invoke("import", str(out), "--db", str(target), "--json").stdout)
    assert counts["runs"] == 200 and counts["results"] == 600
    csv_file = tmp_path / "all.csv"
    invoke("export", str(csv_file), "--db", many, "--variant", "fp32")
    again = json.loads(invoke("import", str(csv_file), "--db", str(target), "--json").stdout)
    assert again["runs"] == 200 and again["results"] == 600
    store = Store(target)
    assert store.count_runs() == 400
    assert [g["runs"] for g in store.group_counts({"variant": "variant"})[0]] == [200, 200]


def test_sql_comparison_equals_the_python_one(db_path):
    """compare (groups and latest runs chosen in SQL) gives the documents of
    reports.compare.compare_groups over all the runs, skipped runs without a meter included."""
    from reports.compare import compare_groups

    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="A")
    add_run(store, "bf16", 4, 1500.0, sweep="A")
    add_run(store, "fp8", 4, 0, status="skipped", sweep="A")
    add_run(store, "fp32", 4, 900.0, sweep="B")
    add_run(store, "fp8", 4, 0, status="skipped", sweep="B")  # joins B's only group
    add_run(store, "fp32", 4, 900.0, sweep="C", meter="rapl")
    add_run(store, "fp32", 4, 950.0, sweep="C")  # C: two meters, the skip joins both
    add_run(store, "fp8", 4, 0, status="skipped", sweep="C")
    add_run(store, "bf16", 8, 100.0, sweep="D")  # no baseline
    for across in (False, True):
        args = ["compare", "--baseline", "fp32", "--db", db_path, "--json"]
        doc = json.loads(invoke(*args, *(["--across-sweeps"] if across else [])).stdout)
        expected = compare_groups(store.runs(), "fp32", across_sweeps=across)
        got = sorted((g["title"], [r["run_id"] for r in g["rows"]], g["notes"])
                     for g in doc["groups"])
        assert got == sorted((g["title"], [r["run_id"] for r in g["rows"]], g["notes"])
                             for g in expected)
        assert doc["total_groups"] == len(expected)
