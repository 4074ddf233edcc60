"""The memory estimate: its parts, the refusal of a run that cannot fit, and its agreement
with the measured peak on the CPU (within harness.memory.CPU_MARGIN)."""

import json
import subprocess
import sys

import pytest
import torch

from hardware_profiles.device import resolve_device
from harness.memory import CPU_MARGIN, estimate_memory, memory_shortfall
from harness.plan import BenchConfig, make_plan
from harness.presets import get_preset
from harness.variants import parse_variant
from profiler.errors import ConfigError

GIB = 2**30
H100_FREE = 79 * GIB


def _estimate(variant, scenario="train", preset="llama-1b"):
    p = get_preset(preset)
    return estimate_memory(p.model, scenario, p.batch_size, p.seq_len, 16,
                           parse_variant(variant, scenario, "cuda"), "cuda")


def test_fp32_llama_training_takes_the_math_path_and_does_not_fit_an_h100():
    est = _estimate("fp32")
    assert est.attention_path == "math"  # efficient takes no GQA, flash no fp32
    assert est.parts["attention"] > 30 * GIB and est.total_bytes > H100_FREE
    p = get_preset("llama-1b")
    _, reason = memory_shortfall(p.model, "train", 4, 2048, 16, parse_variant("tf32", "train", "cuda"),
                                 torch.device("cuda"), H100_FREE, "test")
    assert reason and "largest batch that fits is" in reason and "--batch" in reason


def test_bf16_llama_training_fits_an_h100():
    est = _estimate("bf16-autocast")
    assert est.attention_path == "fused" and est.total_bytes < 0.9 * H100_FREE
    assert {"weights", "gradients", "adamw_state", "activations", "logits"} <= set(est.parts)


def test_decode_counts_the_kv_cache():
    est = _estimate("bf16", "decode")
    assert est.parts["kv_cache"] > 0 and "gradients" not in est.parts


def test_a_single_run_that_cannot_fit_is_refused_with_the_batch_that_fits(monkeypatch):
    monkeypatch.setattr("harness.memory.available_bytes", lambda device: (256 * 2**20, "test"))
    with pytest.raises(ConfigError, match="largest batch that fits"):
        make_plan(BenchConfig(preset="cpu-small", scenario="train"), resolve_device("cpu"))


def test_a_sweep_variant_that_cannot_fit_is_skipped(monkeypatch, db_path):
    from harness.execute import execute_variant
    from harness.runner import _start_run
    from profiler.store import Store

    plan = make_plan(BenchConfig(preset="tiny", scenario="train", variants=("fp32", "fp32+sdpa-math"),
                                 device="cpu"), resolve_device("cpu"))
    store = Store(db_path)
    one = plan.for_variant(plan.variants[1])
    run_id = _start_run(store, one, {}, "test", "sweep")
    monkeypatch.setattr("harness.memory.available_bytes", lambda device: (2**20, "test"))
    execute_variant(store, run_id, one)
    run = store.get_run(run_id)
    assert run["status"] == "skipped" and "out of memory expected" in run["error"]


MEASURE = """
import json, sys, torch
from harness.memory import PeakMemory, estimate_memory
from harness.presets import get_preset
from harness.scenarios import SCENARIOS
from harness.variants import parse_variant
preset, scenario = sys.argv[1], sys.argv[2]
p = get_preset(preset); v = parse_variant("fp32", scenario, "cpu")
seq = p.seq_len - (16 if scenario == "decode" else 0)
s = SCENARIOS[scenario](p.model, batch_size=p.batch_size, seq_len=seq, device=torch.device("cpu"), variant=v)
est = estimate_memory(p.model, scenario, p.batch_size, seq, 16, v, "cpu")
# Warm the libraries up (thread pools, oneDNN) at a tiny size, so the peak is the run's own.
w = SCENARIOS[scenario](get_preset("tiny").model, batch_size=1, seq_len=8, device=torch.device("cpu"), variant=v)
w.prepare(w.build_model()); w.step(); del w
with PeakMemory(torch.device("cpu")) as peak:
    s.prepare(s.build_model())
    for _ in range(2):
        s.step()
print(json.dumps({"estimate": est.total_bytes - est.parts["quality_logits"], "peak": peak.peak_bytes}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("preset, scenario", [("tiny", "train"), ("cpu-small", "train"),
                                              ("cpu-small", "prefill"), ("cpu-small", "decode")])
def test_estimate_matches_the_measured_cpu_peak(preset, scenario):
    """In a fresh process (its peak RSS is its own), no quality guard."""
    out = subprocess.run([sys.executable, "-c", MEASURE, preset, scenario], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    rel, const = CPU_MARGIN
    assert abs(figures["peak"] - figures["estimate"]) <= rel * figures["estimate"] + const, figures
