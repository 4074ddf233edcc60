"""End to end: `etameter bench` on tiny, the stored row, `etameter report`, and runs that end
badly (Ctrl-C, an exception, a NaN loss) leaving a valid database with the right status."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.runner import BenchConfig, RunFailed, run_bench
from harness.scenarios.train import TrainScenario
from profiler.errors import ConfigError
from profiler.store import Store

UNIT_KEYS = ("tokens_per_s", "logical_flops_per_step", "flops_per_s", "mfu", "energy_j",
             "energy_method", "avg_power_w", "eta_flops_per_j", "tokens_per_j")


def etameter(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_bench_json_end_to_end(db_path):
    proc = etameter("bench", "--preset", "tiny", "--steps", "5", "--json", "--db", db_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON document, progress went to stderr
    for key in UNIT_KEYS:
        assert key in doc, key
    assert doc["status"] == "ok" and doc["preset"] == "tiny" and doc["steps_per_window"] == 5
    assert doc["windows"] and all(w["steps"] == 5 for w in doc["windows"])
    assert doc["logical_flops_per_step"] == 884736 * 256
    assert doc["tokens_per_s"] > 0 and doc["flops_per_s"] > 0
    assert doc["attention_convention"] == "full"
    if doc["mfu"] is None:
        assert doc["mfu_reason"]
    for w in doc["windows"]:
        if w["energy_j"] is None:
            assert w["energy_reason"] and w["eta_flops_per_j"] is None
        else:
            assert w["eta_flops_per_j"] == pytest.approx(w["logical_flops"] / w["energy_j"])
    if doc["energy_method"] == "estimated":
        assert doc["energy_estimated"] is True and "estimated" in doc["flags"]
    assert "timed" in proc.stderr

    # The stored row says the same.
    run = Store(db_path).get_run(doc["run_id"])
    assert run["status"] == "ok"
    assert run["config"]["model"]["n_layers"] == 2
    assert run["environment"]["torch_version"]
    rows = sqlite3.connect(db_path).execute(
        "select window, steps, logical_flops_per_step, tokens_per_s from results "
        "where run_id = ? order by window", [doc["run_id"]]).fetchall()
    assert [r[:3] for r in rows] == [(i, 5, doc["logical_flops_per_step"]) for i in range(3)]
    assert doc["tokens_per_s"] == pytest.approx(sorted(r[3] for r in rows)[1])  # the median

    report = etameter("report", "--json", "--db", db_path)
    assert report.returncode == 0, report.stderr
    runs = json.loads(report.stdout)["runs"]
    assert [r["id"] for r in runs] == [doc["run_id"]]


def test_report_table_and_env_db(db_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", "--preset", "tiny-llama", "--steps", "2",
                                 "--warmup", "1"], env={"ETAMETER_DB": db_path})
    assert result.exit_code == 0, result.output
    assert "eta (logical FLOP/J)" in result.stdout
    table = runner.invoke(cli, ["report"], env={"ETAMETER_DB": db_path})
    assert table.exit_code == 0
    assert "tiny-llama" in table.stdout


def test_bad_input_is_a_clear_error(db_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", "--preset", "nope", "--db", db_path])
    assert result.exit_code == 1
    assert "unknown preset 'nope'" in result.output and "tiny" in result.output
    result = runner.invoke(cli, ["bench", "--preset", "tiny", "--seq", "4096", "--db", db_path])
    assert "exceeds the tiny preset's max_seq_len" in result.output
    with open(db_path + ".bad", "wb") as f:
        f.write(b"garbage" * 50)
    result = runner.invoke(cli, ["report", "--db", db_path + ".bad"])
    assert result.exit_code == 1 and "not a valid SQLite database" in result.output


def test_ctrl_c_marks_the_run_interrupted(db_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--steps", "10000000",
         "--db", db_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if os.path.exists(db_path):
            try:
                rows = sqlite3.connect(db_path).execute("select status from runs").fetchall()
            except sqlite3.OperationalError:
                continue
            if rows == [("running",)]:
                break
    time.sleep(3)  # let it reach the timed window
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    conn = sqlite3.connect(db_path)
    assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    status, error = conn.execute("select status, error from runs").fetchone()
    assert status == "interrupted" and "Ctrl-C" in error
    assert conn.execute("select count(*) from results").fetchone() == (0,)


def _bench_with_step(monkeypatch, db_path, step):
    monkeypatch.setattr(TrainScenario, "step", step)
    store = Store(db_path)
    cfg = BenchConfig(preset="tiny", steps=3, warmup_steps=0, device="cpu")
    return store, cfg


def test_exception_marks_the_run_failed(monkeypatch, db_path):
    def boom(self):
        raise RuntimeError("kernel exploded")

    store, cfg = _bench_with_step(monkeypatch, db_path, boom)
    with pytest.raises(RuntimeError):
        run_bench(cfg, store)
    run = store.runs()[0]
    assert run["status"] == "failed" and "kernel exploded" in run["error"]


def test_keyboard_interrupt_in_process(monkeypatch, db_path):
    def interrupt(self):
        raise KeyboardInterrupt

    store, cfg = _bench_with_step(monkeypatch, db_path, interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg, store)
    assert store.runs()[0]["status"] == "interrupted"


def test_nan_loss_fails_the_run(monkeypatch, db_path):
    import torch

    store, cfg = _bench_with_step(monkeypatch, db_path, lambda self: torch.tensor(float("nan")))
    with pytest.raises(RunFailed, match="non-finite"):
        run_bench(cfg, store)
    assert store.runs()[0]["status"] == "failed"


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="batch_size"):
        BenchConfig(batch_size=0)
    with pytest.raises(ConfigError, match="attention convention"):
        BenchConfig(attention_convention="half")


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0
