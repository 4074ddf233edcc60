"""The selftest's dry run: every step on the CPU at tiny sizes, end to end, as CI runs it."""

import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.selftest import STEPS


@pytest.mark.slow
def test_selftest_dry_run_writes_both_summaries(tmp_path):
    out = tmp_path / "selftest"
    result = CliRunner().invoke(cli, ["selftest", "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    steps = {s["name"]: s for s in summary["steps"]}
    assert list(steps) == [name for name, _ in STEPS]
    assert summary["ok"] and summary["dry_run"]
    for name in ("detect", "meters", "calibration", "default_runs", "variant_sweep", "peak_memory"):
        assert steps[name]["status"] == "ok", steps[name]
    for name in ("idle_and_load", "llama_1b", "pytest_gpu"):
        assert steps[name]["status"] == "skipped" and "CUDA" in steps[name]["reason"]
    runs = steps["default_runs"]["data"]
    assert runs["decode"]["status"] == "ok" and runs["decode"]["seq_len_reason"]
    sweep = [r for rs in steps["variant_sweep"]["data"].values() for r in rs]
    assert {r["status"] for r in sweep} <= {"ok", "skipped"}
    assert any(r["status"] == "skipped" and r["reason"] for r in sweep)
    assert all(r["peak_bytes"] is not None for r in steps["peak_memory"]["data"]["runs"])
    md = (out / "summary.md").read_text()
    assert "| variant_sweep | ok |" in md and "| llama_1b | skipped |" in md


def test_selftest_on_gpu_without_one_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    result = CliRunner().invoke(cli, ["selftest", "--gpu", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "--dry-run" in result.output
