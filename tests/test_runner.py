"""The runner with meters that are missing, slow to settle, or measuring idle power."""

from collections import namedtuple

import pytest

from harness import execute
from harness.runner import BenchConfig, run_bench
from profiler.meters.estimate import CpuEstimateMeter
from profiler.meters.select import MeterChoice
from profiler.store import Store

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait")


def test_no_meter_means_null_energy_with_reason_and_the_run_continues(monkeypatch, db_path):
    missing = MeterChoice(None, [{"method": "nvml", "available": False,
                                  "reason": "NVML failed to initialise: not found"}])
    monkeypatch.setattr(execute, "select_meter", lambda *a, **k: missing)
    run = run_bench(BenchConfig(preset="tiny", steps=3, warmup_steps=1, device="cpu"),
                    Store(db_path))
    res = run["results"][0]
    assert run["status"] == "ok"
    assert res["energy_j"] is None and res["eta_flops_per_j"] is None
    assert "NVML failed to initialise" in res["energy_reason"]
    assert "NVML failed to initialise" in res["eta_reason"]
    assert res["tokens_per_s"] > 0


class SlowMeter(CpuEstimateMeter):
    min_window_s = 0.5


def test_window_is_lengthened_to_the_meter_minimum(monkeypatch, db_path):
    meter = SlowMeter(10.0, "test")
    monkeypatch.setattr(execute, "select_meter", lambda *a, **k: MeterChoice(meter, []))
    run = run_bench(BenchConfig(preset="tiny", target_window_s=0.01, warmup_steps=1,
                                device="cpu"), Store(db_path))
    res = run["results"][0]
    assert res["duration_s"] >= 0.5
    assert "approximate" not in res["flags"]


class LongMinimumMeter(CpuEstimateMeter):
    min_window_s = 60.0  # every test window is shorter, however loaded the machine is


def test_explicit_steps_are_kept_and_a_short_window_is_flagged(monkeypatch, db_path):
    meter = LongMinimumMeter(10.0, "test")
    monkeypatch.setattr(execute, "select_meter", lambda *a, **k: MeterChoice(meter, []))
    run = run_bench(BenchConfig(preset="tiny", steps=2, warmup_steps=1, device="cpu"),
                    Store(db_path))
    res = run["results"][0]
    assert res["steps"] == 2
    assert "approximate" in res["flags"]


def test_idle_baseline_gives_net_energy(db_path):
    run = run_bench(BenchConfig(preset="tiny", steps=3, warmup_steps=1, device="cpu",
                                idle_s=0.3), Store(db_path))
    res = run["results"][0]
    assert res["idle_power_w"] is not None
    assert res["energy_net_j"] == pytest.approx(res["energy_j"] - res["idle_power_w"] * res["duration_s"])
    assert run["summary"]["idle"]["idle_estimated"] is True


def test_without_idle_baseline_net_energy_is_missing_with_reason(db_path):
    res = run_bench(BenchConfig(preset="tiny", steps=2, warmup_steps=1, device="cpu"),
                    Store(db_path))["results"][0]
    assert res["energy_net_j"] is None and "--idle-s" in res["energy_net_reason"]


def test_power_traces_are_stored(tmp_path, monkeypatch, db_path):
    from profiler.meters.rapl import RaplMeter
    from tests.test_rapl import zone

    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = RaplMeter(root=tmp_path, interval_s=0.01)
    monkeypatch.setattr(execute, "select_meter", lambda *a, **k: MeterChoice(meter, []))
    store = Store(db_path)
    run = run_bench(BenchConfig(preset="tiny", steps=20, warmup_steps=1, device="cpu"), store)
    samples = store.power_samples(run["id"])
    assert samples and samples[0]["device"] == "cpu:package-0"
    assert 0.0 <= samples[0]["t_s"] < 5.0  # relative to the run-wide origin


def test_overhead_command_runs_interleaved_pairs():
    import json

    from click.testing import CliRunner

    from harness.cli import cli

    result = CliRunner().invoke(cli, ["overhead", "--preset", "tiny", "--repeats", "2",
                                      "--steps", "2", "--warmup", "1", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["ratios"]) == 2 and doc["meter"] == "estimated"
    assert doc["overhead_pct"] == pytest.approx((doc["median_ratio"] - 1) * 100)
    assert doc["target_pct"] == 1.0
