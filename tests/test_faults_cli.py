"""Faults through the command line (issue 15): every bad input is a one-line error naming the
problem and the fix, never a traceback; nothing is overwritten without --force, nothing is
written onto a database a command reads; no JSON carries NaN; every output format escapes
what it shows. The store's own half is tests/test_faults_store.py."""

import builtins
import csv
import io
import json
import os
import re
import sqlite3
import stat

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.errors import ConfigError, ProfileError
from profiler.store import Store

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def fails(*args, code=1, match=None, env=None):
    """The command fails with ``code`` and a one-line message (no traceback)."""
    result = run(*args, env=env)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    message = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(message) == 1, result.output
    if match:
        assert match in message[0], message[0]
    return message[0]


def survives(*args):
    """The command ends with a result or a one-line error, never an exception."""
    result = run(*args)
    assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def add_run(store, variant="fp32", status="ok", summary=None, samples=False):
    run_id = store.start_run(scenario="train", preset="tiny", variant=variant, device="cpu",
                             device_type="cpu", attention_convention="full", config={},
                             environment={"host": "h"})
    store.add_result(run_id, {"window": 0, "steps": 1, "duration_s": 1.0, "tokens_per_s": 10.0})
    if summary is not None:
        store.set_run_summary(run_id, summary, True)
    if samples:
        store.add_power_samples(run_id, 0, "cpu", ((0.0, 10.0), (0.5, 12.0), (1.0, 11.0)))
    store.finish_run(run_id, status)
    return run_id


@pytest.fixture
def db(db_path):
    store = Store(db_path)
    ids = {"ok": add_run(store, samples=True), "failed": add_run(store, "bf16", "failed")}
    store.close()
    return db_path, ids


# -- 1. data loss ----------------------------------------------------------------------------

def test_no_command_writes_onto_the_database_it_reads(db):
    path, ids = db
    before = open(path, "rb").read()
    fails("export", path, "--format", "json", "--db", path, "--force",
          match="the database this command reads")
    fails("report", "--html", path, "--db", path, "--force", match="the database this command reads")
    fails("plot", "power", "--run", ids["ok"][:8], "--out", path, "--db", path, "--force",
          match="the database this command reads")
    assert open(path, "rb").read() == before


def test_existing_outputs_are_replaced_only_with_force(db, tmp_path):
    path, ids = db
    for name, args in (("out.json", ("export", "{out}")),
                       ("page.html", ("report", "--html", "{out}")),
                       ("power.png", ("plot", "power", "--run", ids["ok"][:8], "--out", "{out}"))):
        out = tmp_path / name
        out.write_text("keep me")
        argv = [a.format(out=out) for a in args] + ["--db", path]
        fails(*argv, match="exists: pass --force")
        assert out.read_text() == "keep me"
        ok(*argv, "--force")
        assert out.read_bytes() != b"keep me"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_an_output_never_replaces_another_database(db, tmp_path):
    path, _ = db
    other = tmp_path / "other.db"
    Store(str(other)).close()
    fails("export", other, "--format", "json", "--db", path, "--force",
          match="existing SQLite database")


def test_missing_or_read_only_output_folders_are_errors(db, tmp_path):
    path, _ = db
    fails("export", tmp_path / "no" / "such" / "x.json", "--db", path, match="does not exist")
    if not ROOT:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            fails("export", locked / "x.json", "--db", path, match="not writable")
        finally:
            locked.chmod(stat.S_IRWXU)


# -- 3. deleting runs, unreadable rows, reading a missing database -----------------------------

def test_delete_by_prefix_and_by_status(db):
    path, ids = db
    result = ok("delete", ids["ok"][:8], "--db", path)
    assert ids["ok"][:8] in result.output and "deleted 1 run" in result.output
    doc = json.loads(ok("delete", "--status", "failed", "--db", path, "--json").stdout)
    assert [d["id"] for d in doc["deleted"]] == [ids["failed"]]
    assert Store(path, write=False).runs() == []


def test_delete_refuses_unknown_runs_and_deletes_nothing(db):
    path, ids = db
    fails("delete", ids["ok"][:8], "abcdef99", "--db", path, match="matches 0 runs")
    fails("delete", "--db", path, match="name the runs to delete")
    assert len(Store(path, write=False).runs()) == 2


def test_reading_commands_never_create_a_database(tmp_path):
    missing = tmp_path / "missing.db"
    for args in (("report",), ("compare", "--baseline", "fp32"), ("export", tmp_path / "x.json"),
                 ("plot", "power", "--run", "ab", "--out", tmp_path / "p.png"),
                 ("ledger", "--sweep", "ab"), ("delete", "ab"),
                 ("forecast", "--target-loss", "2.5", "--run", "ab"),
                 ("forecast", "--target-loss", "2.5", "--eta", "1e12", "--budget-j-per-year",
                  "1e11", "--years", "5", "--doublings-per-year", "runs")):
        fails(*args, "--db", missing, match="no database at")
    fails("merge", missing, "--into", tmp_path / "into.db", match="no such database")
    assert sorted(os.listdir(tmp_path)) == []


def test_every_reading_command_survives_an_unreadable_row(db, tmp_path):
    path, ids = db
    conn = sqlite3.connect(path)
    conn.execute("update runs set config = '{not json', summary = '[1' where id = ?", [ids["ok"]])
    conn.commit()
    conn.close()
    text = ok("report", "--db", path).stdout
    assert "unreadable" in text and "etameter delete" in text
    for fmt in ("markdown", "csv", "json", "html"):
        ok("report", "--db", path, "--format", fmt)
    for args in (("compare", "--baseline", "fp32", "--across-sweeps"),
                 ("compare", "--run", ids["ok"][:8], "--run", ids["failed"][:8]),
                 ("plot", "variants", "--out", tmp_path / "v.png"),
                 ("ledger", "--sweep", ids["ok"][:8]),
                 ("forecast", "--run", ids["ok"][:8], "--target-loss", "2.5")):
        survives(*args, "--db", path)
    ok("export", tmp_path / "x.json", "--db", path)
    doc = json.loads(ok("report", "--db", path, "--json").stdout)
    assert any("unreadable" in r for r in doc["runs"])
    ok("delete", ids["ok"][:8], "--db", path)


# -- 4. NaN, infinity and impossible values ----------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (("bench", "--cpu-tdp-w", "inf"), "--cpu-tdp-w"),
    (("bench", "--cpu-tdp-w", "nan"), "--cpu-tdp-w"),
    (("bench", "--window-s", "nan"), "--window-s"),
    (("bench", "--idle-s", "-1"), "--idle-s"),
    (("bench", "--min-top1", "2"), "--min-top1"),
    (("meters", "--cpu-tdp-w", "-5"), "--cpu-tdp-w"),
    (("mfu", "--params", "1e9", "--layers", "2", "--heads", "2", "--seq", "128",
      "--tokens-per-s", "nan", "--peak-tflops", "100"), "--tokens-per-s"),
    (("mfu", "--params", "1e9", "--layers", "2", "--heads", "2", "--seq", "128",
      "--tokens-per-s", "100", "--peak-tflops", "inf"), "--peak-tflops"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12", "--power-w", "-100"), "--power-w"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12", "--mfu", "5"), "--mfu"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12", "--price-per-kwh", "-1"),
     "--price-per-kwh"),
    (("forecast", "--target-loss", "nan", "--eta", "1e12"), "--target-loss"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12", "--devices", "0"), "--devices"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12", "--doublings-per-year", "nan"),
     "--doublings-per-year"),
    (("forecast", "--target-loss", "2.5", "--eta", "1e12",
      "--law-constants", "l_inf=nan,a=500,alpha=0.1"), "--law-constants"),
    (("calibrate", "--repeats", "0"), "--repeats"),
    (("overhead", "--steps", "1.5"), "--steps"),
])
def test_numeric_options_are_finite_and_in_range(args, option):
    message = fails(*args, code=2)
    assert option in message and "must be" in message


def test_json_output_never_carries_nan(db_path):
    store = Store(db_path)
    add_run(store, summary={"tokens_per_s": float("nan"), "mfu": float("inf"),
                            "eta_flops_per_j": float("-inf")})
    for args in (("report", "--json"), ("report", "--format", "json")):
        text = ok(*args, "--db", db_path).stdout
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    table = ok("report", "--db", db_path).stdout
    assert "nan" not in table.lower() and "inf%" not in table


def test_emit_json_replaces_non_finite_numbers(capsys):
    from harness.cli.options import emit_json

    emit_json({"a": float("nan"), "b": [1.0, float("inf")], "c": (2, float("-inf"))})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [1.0, None], "c": [2, None]}


# -- 5. zero is not the default ----------------------------------------------------------------

def test_zero_sizes_are_refused_not_defaulted():
    fails("flops", "--preset", "tiny", "--batch", "0", code=2, match="--batch")
    fails("flops", "--preset", "tiny", "--seq", "0", code=2, match="--seq")
    fails("bench", "--nproc", "2", "--batch", "0", code=2, match="--batch")
    fails("bench", "--nproc", "0", code=2, match="--nproc")


def test_flops_refuses_a_sequence_beyond_the_model():
    from harness.presets import get_preset

    limit = get_preset("tiny").model.max_seq_len
    fails("flops", "--preset", "tiny", "--seq", limit + 1, match="max_seq_len")
    fails("flops", "--preset", "tiny", "--scenario", "decode", "--seq", limit,
          "--new-tokens", "1", match="max_seq_len")
    ok("flops", "--preset", "tiny", "--seq", limit)


@pytest.mark.parametrize("token", ["moe-0-0", "moe-1-1", "moe-8-0", "moe-4-5"])
def test_moe_needs_two_experts_and_a_valid_top_k(token):
    from harness.variants import parse_variant

    with pytest.raises(ConfigError, match="needs E >= 2 experts and 1 <= K <= E"):
        parse_variant(f"fp32+{token}", "train", "cpu")


# -- 6. implausible profiles ---------------------------------------------------------------------

DEVICE = """schema = 1
[[device]]
id = "x"
display_name = "X"
vendor = "nvidia"
names = ["X"]
peak_tflops = { bf16 = 100 }
tdp_w = 300
sources = { peak_tflops = "datasheet", tdp_w = "datasheet" }
"""
CPU = """schema = 1
[[cpu]]
id = "c"
display_name = "C"
vendor_id = "AuthenticAMD"
cpu_family = 25
models = [1]
flops_per_cycle = { fp32 = 32 }
reference_sku = { name = "S", cores = 8, tdp_w = 100 }
sources = { flops_per_cycle = "guide", reference_sku = "page" }
"""


@pytest.mark.parametrize("text, field", [
    (DEVICE.replace("bf16 = 100", "bf16 = nan"), "peak_tflops.bf16"),
    (DEVICE.replace("bf16 = 100", "bf16 = inf"), "peak_tflops.bf16"),
    (DEVICE.replace("bf16 = 100", "bf16 = 0"), "peak_tflops.bf16"),
    (DEVICE.replace("tdp_w = 300", "tdp_w = 0"), "tdp_w"),
    (DEVICE.replace('names = ["X"]', "names = [1, 2]"), "names"),
    (CPU.replace("fp32 = 32", "fp32 = 1e12"), "flops_per_cycle.fp32"),
    (CPU.replace("fp32 = 32", "fp32 = 0"), "flops_per_cycle.fp32"),
    (CPU.replace("cores = 8", "cores = 0.5"), "reference_sku.cores"),
    (CPU.replace("tdp_w = 100", "tdp_w = 0"), "reference_sku.tdp_w"),
])
def test_implausible_profile_fields_are_named(text, field):
    from hardware_profiles.profiles import parse_profile_text

    with pytest.raises(ProfileError, match=f"user.toml.*'{field}'"):
        parse_profile_text(text, "user.toml")


def test_a_non_utf8_profile_is_named(tmp_path):
    from hardware_profiles.profiles import load_profiles

    bad = tmp_path / "latin1.toml"
    bad.write_bytes(DEVICE.replace('"X"', '"X\xe9"').encode("latin-1"))
    with pytest.raises(ProfileError, match="latin1.toml is not UTF-8"):
        load_profiles([bad])


def test_a_missing_profiles_folder_is_an_error(tmp_path, monkeypatch):
    from hardware_profiles.profiles import load_profiles

    monkeypatch.setenv("ETAMETER_PROFILES", str(tmp_path / "nowhere"))
    with pytest.raises(ProfileError, match="does not exist: create it .* or unset ETAMETER_PROFILES"):
        load_profiles()
    fails("mfu", "--params", "1e9", "--layers", "2", "--heads", "2", "--seq", "128",
          "--head-dim", "64", "--tokens-per-s", "100", "--device", "h100",
          env={"ETAMETER_PROFILES": str(tmp_path / "nowhere")}, match="ETAMETER_PROFILES")


# -- 7. fits on data that cannot identify a law ------------------------------------------------

@pytest.mark.parametrize("rows, message", [
    ("C,L\n1e20,2.0\n1e20,2.0\n1e20,2.0\n1e20,2.0\n", "distinct compute values"),
    ("C,L\n1e18,2.0\n1e19,2.1\n1e20,2.2\n1e21,2.3\n", "do not decrease"),
    ("C,L\n1e18,2.0\n1e19,2.0\n1e20,2.0\n1e21,2.0\n", "do not decrease"),
    ("C,L\n1e18,2.0\n1e19,nan\n1e20,1.8\n1e21,1.7\n", "line 3: L = nan must be a finite positive"),
    ("C,L\n1e18,2.0\n1e19\n1e20,1.8\n1e21,1.7\n", "line 3: L is missing"),
    ("C,L\n1e18,2.0\n1e19,-1\n1e20,1.8\n1e21,1.7\n", "line 3"),
    ("N,D,L\n" + "1e8,1e9,2.5\n" * 6, "distinct (N, D)"),
])
def test_degenerate_fit_data_is_refused(tmp_path, rows, message):
    path = tmp_path / "points.csv"
    path.write_text(rows)
    fails("forecast", "--fit", path, "--eta", "1e12", "--target-loss", "2.5", match=message)


def test_a_non_utf8_fit_file_is_named(tmp_path):
    path = tmp_path / "points.csv"
    path.write_bytes("C,L\n1e18,2.0\xe9\n".encode("latin-1"))
    fails("forecast", "--fit", path, "--eta", "1e12", "--target-loss", "2.5", match="not UTF-8")


def test_a_fitted_law_reports_residuals_and_intervals(tmp_path):
    path = tmp_path / "points.csv"
    compute = [10 ** (17 + i / 2) for i in range(8)]
    path.write_text("C,L\n" + "".join(f"{c},{1.7 + 1000 * c ** -0.15:.6f}\n" for c in compute))
    args = ("forecast", "--fit", path, "--eta", "1e12", "--target-loss", "2.5", "--bootstrap", "4")
    fit = json.loads(ok(*args, "--json").stdout)["fit"]
    assert fit["residuals"]["rms_log_loss"] < 0.01
    assert set(fit["confidence_95"]) == {"a", "l_inf", "alpha"}
    text = ok(*args).stdout
    assert "residuals of log loss" in text and "95% interval" in text


# -- 10. escaping per output format --------------------------------------------------------------

HOSTILE = "=cmd|' /C calc'!A0<script>`x`|$\\frac{$"


def test_markdown_and_csv_escape_hostile_names(db_path):
    store = Store(db_path)
    add_run(store, variant=HOSTILE)
    md = ok("report", "--db", db_path, "--format", "markdown").stdout
    assert "<script>" not in md and "\\<script\\>" in md and "\\|" in md and "\\`x\\`" in md
    rows = list(csv.DictReader(io.StringIO(ok("report", "--db", db_path, "--format", "csv").stdout)))
    assert rows[0]["variant"] == "'" + HOSTILE


def test_html_escapes_every_interpolated_value():
    from reports.html import html_report

    class FakeStore:
        path = "<db>"

        def power_samples(self, run_id):
            return [{"device": "<d>", "window": 0, "t_s": t, "power_w": 10.0} for t in (0.0, 1.0)]

    run = {"id": "<img src=x onerror=alert(1)>", "status": "ok", "variant": "<v>",
           "scenario": "train", "preset": "tiny", "config": {}, "summary": {}, "results": []}
    page = html_report([run], FakeStore())
    assert "<img src=x" not in page and "<v>" not in page and "<db>" not in page
    assert "&lt;img src" in page and "&lt;v&gt;" in page


def test_a_dollar_in_names_does_not_break_plots(db_path, tmp_path):
    store = Store(db_path)
    run_id = add_run(store, variant=HOSTILE, samples=True)
    ok("plot", "power", "--run", run_id[:8], "--out", tmp_path / "p.png", "--db", db_path)
    ok("report", "--db", db_path, "--html", tmp_path / "p.html")


# -- 11. tracebacks become errors ----------------------------------------------------------------

def test_plugins_that_raise_or_exit_name_the_module(tmp_path, monkeypatch):
    from harness.variants.plugins import load_plugins

    (tmp_path / "plugin_raises.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "plugin_exits.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module, message in (("plugin_raises", "raised RuntimeError while importing: boom"),
                            ("plugin_exits", "called sys.exit(3)"),
                            ("plugin_missing_xyz", "cannot be found")):
        monkeypatch.setenv("ETAMETER_VARIANT_PLUGINS", module)
        with pytest.raises(ConfigError, match=f"'{module}'.*{re.escape(message)}"):
            load_plugins()


def test_bench_checks_the_database_before_launching(tmp_path):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database")
    fails("bench", "--preset", "tiny", "--nproc", "2", "--db", not_sqlite,
          match="not a valid SQLite database")
    fails("bench", "--preset", "tiny", "--nproc", "2", "--db", tmp_path, code=2,
          match="is a directory")
    fails("bench", "--preset", "no-such-preset", "--nproc", "2", "--db", tmp_path / "x.db")
    assert not_sqlite.read_text() == "not a database"
    assert not (tmp_path / "x.db").exists()


def test_ctrl_c_during_a_lazy_import_exits_130(monkeypatch, db_path):
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "harness.runner":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    result = run("bench", "--preset", "tiny", "--db", db_path)
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Traceback" not in result.output


def test_hostile_imports_and_damaged_meta_are_one_line(db_path, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"etameter_export": 1, "runs": [{"id": 5}]' + "]" * 3)
    fails("import", bad, "--db", db_path, match="not valid JSON")
    store = Store(db_path)
    store.db.execute("update meta set value = 'x' where key = 'schema_version'")
    store.db.conn.commit()
    store.close()
    fails("report", "--db", db_path, match="not a number")


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_a_database_in_a_read_only_folder_is_read_as_is(db, tmp_path):
    path, _ = db
    Store(path).db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    folder = os.path.dirname(path)
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert len(json.loads(ok("report", "--db", path, "--json").stdout)["runs"]) == 2
    finally:
        os.chmod(folder, stat.S_IRWXU)
