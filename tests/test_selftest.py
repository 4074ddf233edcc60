"""The selftest: its plan within a budget, a summary that survives a kill, children killed with
their process group, and the CPU run end to end (slow)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.selftest import PHASES, Phase, PhaseSkipped, SelftestConfig, plan, run_phases
from harness.selftest.children import ChildTimeout, run_child

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_prints_a_gpu_plan_that_fits_the_budget_without_a_gpu(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    result = CliRunner().invoke(cli, ["selftest", "--gpu", "--dry-run", "--budget-s", "300",
                                      "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {p["name"]: p for p in doc["phases"]}
    assert [p["name"] for p in doc["phases"]] == [p.name for p in PHASES]
    assert doc["planned_s"] <= 300 and all(p["estimate_s"] > 0 for p in doc["phases"])
    for name in ("environment", "detect_and_meters", "idle_and_load", "calibration",
                 "llama_1b_train"):
        assert rows[name]["runs"], rows[name]
    assert "--with-tests" in rows["pytest_gpu"]["reason"]
    assert "does not fit the budget" in rows["variant_sweep"]["reason"]
    assert sum(p["estimate_s"] for p in doc["phases"] if p["runs"]) == doc["planned_s"]


def test_a_bigger_budget_plans_more_and_with_tests_adds_pytest():
    small = plan(PHASES, SelftestConfig(None, budget_s=300))
    big = plan(PHASES, SelftestConfig(None, budget_s=5000, with_tests=True))
    assert sum(p["runs"] for p in big["phases"]) > sum(p["runs"] for p in small["phases"])
    assert {p["name"]: p for p in big["phases"]}["pytest_gpu"]["runs"]


def test_budget_must_be_positive():
    result = CliRunner().invoke(cli, ["selftest", "--dry-run", "--budget-s", "0"])
    assert result.exit_code == 1 and "--budget-s" in result.output


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _phase(name, estimate, fn):
    return Phase(name, name, estimate, estimate, fn)


def test_phases_that_do_not_fit_what_is_left_are_skipped_with_the_reason(tmp_path):
    clock = FakeClock()

    def takes(seconds, data=None):
        def run(ctx):
            clock.t += seconds
            return data or {"took": seconds}
        return run

    def skips(ctx):
        raise PhaseSkipped("nothing to do")

    def fails(ctx):
        raise ValueError("broken")

    phases = [_phase("a", 10, takes(40)), _phase("b", 50, takes(50)), _phase("c", 30, fails),
              _phase("d", 5, skips), _phase("e", 5, takes(5))]
    cfg = SelftestConfig(str(tmp_path), gpu=False, budget_s=100)
    summary = run_phases(cfg, phases, log=lambda line: None, clock=clock)
    rows = {r["name"]: r for r in summary["phases"]}
    # a took 40 s (estimate 10): b (50) still fits 60 s; c (30) no longer fits 10 s left
    assert rows["a"]["status"] == rows["b"]["status"] == "ok"
    assert rows["c"]["status"] == "skipped" and "estimated 30 s, 10 s left" in rows["c"]["reason"]
    assert rows["d"]["status"] == "skipped" and rows["d"]["reason"] == "nothing to do"
    assert rows["e"]["status"] == "ok"
    assert rows["a"]["duration_s"] == 40 and summary["ok"] and not summary["in_progress"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["phases"] == json.loads(json.dumps(summary["phases"]))
    assert "is a consistency check" in (tmp_path / "summary.md").read_text()


def test_a_failed_phase_is_recorded_and_the_next_still_runs(tmp_path):
    def fails(ctx):
        raise ValueError("broken")

    phases = [_phase("a", 1, fails), _phase("b", 1, lambda ctx: {"x": 1})]
    summary = run_phases(SelftestConfig(str(tmp_path), gpu=False, budget_s=10), phases,
                         log=lambda line: None)
    assert [r["status"] for r in summary["phases"]] == ["failed", "ok"]
    assert "ValueError: broken" in summary["phases"][0]["reason"] and not summary["ok"]


KILLED = """
import sys, time
from harness.selftest import Phase, SelftestConfig, run_phases
from harness.selftest.children import run_child
def ok(name):
    return Phase(name, name, 1, 1, lambda ctx: {"measured": name})
def sleeps(ctx):
    run_child([sys.executable, "-c", "import time; time.sleep(120)"], ctx.time_left_s(),
              lambda proc: proc and print("child", proc.pid, flush=True))
run_phases(SelftestConfig(sys.argv[1], gpu=False, budget_s=600),
           [ok("first"), ok("second"), Phase("long", "long", 1, 1, sleeps), ok("never")],
           log=lambda line: None)
"""


def _start_killable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()  # the long phase's child has started
    assert line.startswith("child"), proc.stderr.read()
    return proc, int(line.split()[1])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_a_killed_selftest_keeps_every_finished_phase(tmp_path):
    proc, _ = _start_killable(tmp_path)
    proc.kill()  # SIGKILL mid-phase: no handler runs
    proc.wait()
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["phases"]}
    assert rows["first"]["status"] == rows["second"]["status"] == "ok"
    assert rows["first"]["data"] == {"measured": "first"}
    assert rows["long"]["status"] == "running" and summary["in_progress"]
    assert "| second | ok |" in (tmp_path / "summary.md").read_text()


def test_sigterm_records_the_interruption_and_kills_the_phase_process_group(tmp_path):
    proc, child = _start_killable(tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["phases"]}
    assert rows["second"]["status"] == "ok" and rows["long"]["status"] == "interrupted"
    assert rows["never"]["status"] == "not_run" and not summary["in_progress"]
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_a_child_that_outruns_its_time_is_killed_with_its_process_group(tmp_path):
    pid_file = tmp_path / "grandchild"
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(ChildTimeout, match="process group"):
        run_child([sys.executable, "-c", code], 3.0)
    assert time.monotonic() - t0 < 20
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_selftest_on_gpu_without_one_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    result = CliRunner().invoke(cli, ["selftest", "--gpu", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "--cpu" in result.output


#: The CPU run's phases this test runs: one of each kind of child (the others run the same
#: ``bench`` child with other options; the whole --cpu run takes about 5 minutes on 2 cores).
CPU_SUBSET = ("environment", "detect_and_meters", "idle_and_load", "calibration",
              "llama_1b_train", "fp8_vs_bf16_train", "variant_probes", "peak_memory",
              "pytest_gpu")


@pytest.mark.slow
def test_selftest_cpu_run_writes_both_summaries(tmp_path):
    from harness.selftest import run_selftest

    out = tmp_path / "selftest"
    phases = [p for p in PHASES if p.name in CPU_SUBSET]
    summary = run_selftest(SelftestConfig(str(out), gpu=False, budget_s=600), phases=phases)
    assert summary == json.loads(json.dumps(json.loads((out / "summary.json").read_text())))
    rows = {p["name"]: p for p in summary["phases"]}
    assert list(rows) == list(CPU_SUBSET)
    assert summary["ok"] and not summary["gpu"] and not summary["in_progress"]
    for name in ("environment", "detect_and_meters", "calibration", "llama_1b_train",
                 "variant_probes", "peak_memory"):
        assert rows[name]["status"] == "ok", rows[name]
    for name in ("idle_and_load", "fp8_vs_bf16_train", "pytest_gpu"):
        assert rows[name]["status"] == "skipped" and "CUDA" in rows[name]["reason"]
    # the calibration stored first gives the later runs their ceiling
    assert rows["llama_1b_train"]["data"]["mfu_vs_ceiling"] is not None
    assert any(p["status"] == "skipped" and p["reason"]
               for p in rows["variant_probes"]["data"]["probes"])
    assert all(r["peak_bytes"] is not None for r in rows["peak_memory"]["data"]["runs"])
    md = (out / "summary.md").read_text()
    assert "| llama_1b_train | ok |" in md and "| fp8_vs_bf16_train | skipped |" in md
