"""Checks that need a CUDA GPU (run with `pytest -m gpu` on a GPU machine; skipped elsewhere)."""

import json
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_bench_on_cuda_uses_nvml_and_a_known_peak(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny",
                           "--json", "--window-s", "2", "--db", str(tmp_path / "g.db")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["device"]["type"] == "cuda"
    assert doc["energy_method"] in ("nvml_counter", "nvml_power_integral")
    assert doc["energy_j"] > 0 and doc["eta_flops_per_j"] > 0
    assert doc["precision"] == "bf16"
    if doc["device"]["profile"] is None:
        assert doc["mfu"] is None and doc["mfu_reason"]


def test_counter_and_integral_agree_on_a_matmul_load():
    """A >= 10 s bf16 matmul load: the NVML counter and the sampled integral agree within 5%."""
    from profiler.meters.nvml import NvmlMeter
    from profiler.timing import TimedWindow

    props = torch.cuda.get_device_properties(0)
    meter = NvmlMeter(uuids=[str(props.uuid)])
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    try:
        with TimedWindow(meter, torch.cuda.synchronize) as window:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 10.0:
                for _ in range(50):
                    a @ b
                torch.cuda.synchronize()
    finally:
        meter.close()
    gpu = window.energy.devices[0]
    assert window.duration_s >= 10.0
    assert gpu.detail["counter_energy_j"] is not None
    assert gpu.detail["relative_disagreement"] < 0.05, gpu.detail
