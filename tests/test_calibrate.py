"""Calibration on the CPU with small sizes, stored ceilings, and MFU against them."""

import json

import pytest
import torch
from click.testing import CliRunner

from hardware_profiles.calibrate import (CalibrationConfig, calibrate, copy_bandwidth,
                                         matmul_ceiling, supported_precisions)
from harness.cli import cli
from harness.runner import BenchConfig, run_bench
from profiler.errors import ConfigError
from profiler.store import Store

CPU = torch.device("cpu")


def no_sync():
    pass


def test_matmul_ceiling_is_a_plausible_measurement():
    r = matmul_ceiling("fp32", CPU, no_sync, repeats=3, n_max=256)
    assert r["kind"] == "matmul" and r["unit"] == "flop_per_s"
    assert r["size"] <= 256 and len(r["trials"]) == 3
    assert 1e8 < r["value"] < 1e13  # between 0.1 GFLOP/s and 10 TFLOP/s on any CPU
    assert r["value"] == sorted(r["trials"])[1]  # the median of three


def test_copy_bandwidth_counts_read_and_write():
    r = copy_bandwidth(CPU, no_sync, repeats=3, size_bytes=8 * 2**20)
    assert r["size"] == 8 * 2**20
    assert 1e8 < r["value"] < 1e13


def test_calibrate_skips_what_the_cpu_cannot_run_with_a_reason():
    out = calibrate(CPU, no_sync, CalibrationConfig(precisions=("fp32", "fp8"), repeats=2,
                                                    n_max=128, copy_bytes=2**20))
    kinds = [(r["kind"], r["precision"]) for r in out["results"]]
    assert kinds == [("matmul", "fp32"), ("copy", None)]
    assert "need an NVIDIA GPU (compute capability 8.9" in out["skipped"]["fp8"]


def test_supported_precisions_on_cpu():
    ok, skipped = supported_precisions(CPU)
    assert ok == ["fp32", "bf16"] and "tf32" in skipped


def test_bad_calibration_config():
    with pytest.raises(ConfigError, match="unknown precision"):
        CalibrationConfig(precisions=("fp7",))
    with pytest.raises(ConfigError, match="repeats"):
        CalibrationConfig(repeats=0)


def test_ceiling_is_stored_and_used_for_mfu_vs_ceiling(db_path):
    from hardware_profiles.device import resolve_device

    ctx = resolve_device("cpu")
    store = Store(db_path)
    before = run_bench(BenchConfig(preset="tiny", steps=2, warmup_steps=1, device="cpu"), store)
    res = before["results"][0]
    assert res["mfu_vs_ceiling"] is None and "etameter calibrate" in res["ceiling_reason"]

    store.add_calibration(device_key=ctx.key, device_name=ctx.name, device_type="cpu",
                          profile_id=ctx.profile_id, environment={},
                          result={"kind": "matmul", "precision": "fp32", "value": 5e10,
                                  "unit": "flop_per_s", "size": 128, "repeats": 1, "spread": 0})
    after = run_bench(BenchConfig(preset="tiny", steps=2, warmup_steps=1, device="cpu"), store)
    res = after["results"][0]
    assert res["ceiling_flops_per_s"] == 5e10
    assert res["mfu_vs_ceiling"] == pytest.approx(res["flops_per_s"] / 5e10)


def test_calibrate_and_devices_commands(db_path, monkeypatch):
    import hardware_profiles.calibrate as cal

    monkeypatch.setitem(cal.SIZING, "cpu", dict(n_start=64, n_max=128, min_op_s=10.0,
                                                min_trial_s=0.01, copy_bytes=2**20))
    runner = CliRunner()
    result = runner.invoke(cli, ["calibrate", "--precision", "fp32", "--repeats", "2",
                                 "--device", "cpu", "--db", db_path, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    fp32 = next(c for c in doc["ceilings"] if c["kind"] == "matmul")
    assert fp32["size"] == 128 and fp32["calibration_id"]
    devices = json.loads(runner.invoke(cli, ["devices", "--db", db_path, "--json"]).stdout)
    cpu = next(d for d in devices["devices"] if d["type"] == "cpu")
    assert {c["kind"] for c in cpu["ceilings"]} == {"matmul", "copy"}
    assert "fp32" in cpu["peaks"] and "evidence" in cpu
