"""End to end: `etameter bench` on tiny, the stored row, `etameter report`, and runs that end
badly (Ctrl-C, an exception, a NaN loss) leaving a valid database with the right status."""

import json
import os
import re
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
    proc = etameter("bench", "--preset", "tiny", "--steps", "5", "--json", "--progress",
                    "--db", db_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON document, progress (asked) went to stderr
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


def test_overhead_verdict_from_the_interval_of_the_ratios():
    from harness.overhead import overhead_verdict
    from reports.text import overhead_lines

    within = overhead_verdict([1.001, 1.002, 1.0015, 1.0012], 1.0)
    assert within["verdict"] == "within target" and within["within_target"] is True
    assert within["overhead_ci_high_pct"] < 1.0
    over = overhead_verdict([1.5, 1.6, 1.55], 1.0)
    assert over["verdict"] == "over target" and over["overhead_ci_low_pct"] > 1.0
    noisy = overhead_verdict([0.6, 2.3, 1.1, 1.0, 1.3], 1.0)  # "+66%, spread 171%"
    assert noisy["verdict"] == "inconclusive at this noise" and "straddles" in noisy["verdict_reason"]
    single = overhead_verdict([1.001], 1.0)
    assert single["verdict"] == "inconclusive at this noise" and "--repeats" in single["verdict_reason"]
    result = {"preset": "tiny", "device": "CPU", "meter": "estimated", "overhead_pct": 66.47,
              "repeats": 5, "spread_pct": 171.0, **noisy}
    lines = overhead_lines(result)
    assert "95% interval of the mean" in lines[0]
    assert lines[1] == "verdict: inconclusive at this noise (target < 1.0%)"


def test_overhead_takes_profiles():
    result = CliRunner().invoke(cli, ["overhead", "--help"])
    assert "--profile" in result.output


def test_mfu_shape_mode_honours_head_dim():
    palm = ["mfu", "--layers", "118", "--hidden", "18432", "--heads", "48", "--vocab", "256000",
            "--ffn", "73728", "--kv-heads", "1", "--mlp", "swiglu", "--seq", "2048",
            "--tokens-per-s", "238300", "--devices", "6144", "--peak-tflops", "275"]
    given = CliRunner().invoke(cli, palm + ["--head-dim", "256"])
    assert given.exit_code == 0 and "MFU: 46.2%" in given.output and "note:" not in given.output
    assumed = CliRunner().invoke(cli, palm)
    assert "head dim assumed d/H = 384" in assumed.output and "--head-dim" in assumed.output
    doc = json.loads(CliRunner().invoke(cli, palm + ["--json"]).output)
    assert doc["attention_width"] == 48 * 384 and "head_dim_note" in doc


@pytest.mark.slow
def test_sweep_output_names_its_group_and_intervals(db_path):
    """Two variants in fresh processes: the table's title names the group, every ratio has an
    interval or reads no significant difference."""
    proc = etameter("bench", "--preset", "tiny", "--scenario", "prefill", "--variants",
                    "fp32,bf16", "--steps", "3", "--warmup", "1", "--no-quality", "--db", db_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "prefill on tiny, batch" in out and "attention full" in out and "sweep " in out
    assert "[95%" in out and "(reference)" in out, out
    # A ratio reads as a speedup with its interval, or as no significant difference (the
    # table may wrap a cell over lines, so the words are checked, and the interval in JSON).
    assert re.search(r"\d\.\d\dx", out) or "no significant difference" in out
    doc = json.loads(etameter("compare", "--baseline", "fp32", "--json", "--db", db_path).stdout)
    (group,) = doc["groups"]
    row = group["rows"][1]
    assert row["speedup_ci_low"] <= row["speedup"] <= row["speedup_ci_high"]
    assert row["speedup_significant"] == (not row["speedup_ci_low"] <= 1.0 <= row["speedup_ci_high"])
