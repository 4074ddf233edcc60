"""Checks that need a CUDA GPU (run with `pytest -m gpu` on a GPU machine; skipped elsewhere)."""

import json
import subprocess
import sys

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
    from harness.selftest import metered_matmul_load
    from profiler.meters.nvml import NvmlMeter

    props = torch.cuda.get_device_properties(0)
    meter = NvmlMeter(uuids=[str(props.uuid)])
    try:
        window = metered_matmul_load(meter, 10.0)
    finally:
        meter.close()
    gpu = window.energy.devices[0]
    assert window.duration_s >= 10.0
    assert gpu.detail["counter_energy_j"] is not None
    assert gpu.detail["relative_disagreement"] < 0.05, gpu.detail


def _bench(tmp_path, *args):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--json",
                           "--db", str(tmp_path / "g.db"), *args],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_detection_matches_the_profile_by_pci_id():
    from hardware_profiles.device import resolve_device

    ctx = resolve_device("cuda")
    assert ctx.profile_id is not None, ctx.profile_reason
    assert ctx.uuids and ctx.evidence.get("identity") == "nvml"
    assert any("pci" in key for key in ctx.evidence), ctx.evidence


def test_llama_1b_bf16_training_mfu_and_power_are_plausible(tmp_path):
    doc = _bench(tmp_path, "--preset", "llama-1b", "--window-s", "10", "--idle-s", "3")
    assert 0.2 < doc["mfu"] < 0.8, doc
    assert doc["idle_power_w"] < doc["avg_power_w"], doc


def test_power_is_between_idle_and_the_limit():
    from harness.selftest import metered_idle_and_load
    from profiler.meters.nvml import NvmlMeter

    meter = NvmlMeter(uuids=[str(torch.cuda.get_device_properties(0).uuid)])
    try:
        idle, load, settle = metered_idle_and_load(meter, 2.0, 5.0)
    finally:
        meter.close()
    gpu = load.energy.devices[0]
    assert idle.energy.avg_power_w < gpu.avg_power_w <= 1.05 * gpu.detail["power_limit_w"]
    assert "throttled" not in gpu.flags, gpu.detail["clock_event_reasons"]
    assert settle["how"] in ("settled", "not settled") and settle["powers_w"]


@pytest.mark.parametrize("scenario", ["train", "prefill", "decode"])
def test_every_sweep_variant_is_ok_or_skipped(tmp_path, scenario):
    from harness.selftest import SWEEP

    variants = SWEEP.get(scenario, SWEEP["prefill"])
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--json",
                           "--preset", "gpt2-124m", "--scenario", scenario, "--window-s", "2",
                           "--trials", "1", "--variants", ",".join(variants),
                           "--db", str(tmp_path / "s.db")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    runs = doc["runs"]
    bad = [(r["variant"], r.get("reason")) for r in runs if r["status"] not in ("ok", "skipped")]
    assert not bad, bad


def test_compile_max_autotune_training_runs(tmp_path):
    """CUDA graphs: the losses the window keeps must survive the next replay (issue 16.2)."""
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--variants", "compile-max-autotune",
                 "--window-s", "3", "--trials", "2")
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["compile_time_s"] is not None and doc["tokens_per_s"] > 0


def test_int4_weight_only_runs_on_sm80_and_newer(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--scenario", "prefill",
                 "--variants", "int4-weight-only", "--window-s", "2", "--trials", "1")
    assert doc["status"] == "ok", doc.get("reason")


# -- issue 21: the review's defects, on the GPU ----------------------------------------------

def test_int8_dynamic_decode_at_batch_1_is_skipped_for_its_float_fallback(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--scenario", "decode", "--batch", "1",
                 "--variants", "int8-dynamic", "--window-s", "1", "--trials", "1")
    assert doc["status"] == "skipped" and "fell back" in doc["reason"], doc.get("reason")
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--scenario", "decode", "--batch", "32",
                 "--variants", "int8-dynamic", "--window-s", "1", "--trials", "1")
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["variant_info"]["kernel_check"]["ops"]["aten::_int_mm"] > 0


def test_fp8_and_bf16_training_compare_like_with_like(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--window-s", "2", "--trials", "2",
                 "--variants", "bf16-autocast+compile,fp8-tensorwise+compile")
    row = doc["comparison"][1]
    assert row["variant"] == "bf16-autocast+fp8-tensorwise+compile"
    assert row["differences"] == ["fp8: tensorwise (reference none)"], row
    assert "not like with like" not in row["verdict"]


def test_compiled_decode_counts_every_compilation_and_none_while_timed(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--scenario", "decode",
                 "--variants", "bf16+compile", "--window-s", "2", "--trials", "2")
    assert doc["status"] == "ok", doc.get("reason")
    phases = doc["compiles_by_phase"]
    assert doc["compile_count"] >= 2 and doc["compile_graphs"] >= 2, phases
    assert "timed" not in phases and doc["compile_time_s"] > 0


def test_idle_power_is_taken_once_power_has_settled(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--window-s", "2", "--idle-s", "2")
    settle = doc["idle"]["idle_settle"]
    assert settle["how"] in ("settled", "not settled") and len(settle["powers_w"]) >= 3
    assert doc["idle_power_w"] <= settle["powers_w"][0] * 1.05


def test_llama_1b_is_built_on_the_gpu_in_seconds():
    import time

    from harness.presets import get_preset
    from harness.scenarios import TrainScenario
    from harness.variants import parse_variant

    scenario = TrainScenario(get_preset("llama-1b").model, batch_size=1, seq_len=8,
                             device=torch.device("cuda"),
                             variant=parse_variant("bf16-autocast", "train", "cuda"))
    t0 = time.perf_counter()
    model = scenario.build_model()
    torch.cuda.synchronize()
    assert time.perf_counter() - t0 < 15
    assert {p.device.type for p in model.parameters()} == {"cuda"}


def test_train_quality_keeps_the_initial_weights_on_the_gpu(tmp_path):
    doc = _bench(tmp_path, "--preset", "gpt2-124m", "--window-s", "2", "--trials", "1")
    assert doc["variant_info"]["quality_weights_kept_on"] == "device"


def test_a_mig_instance_reports_no_mfu_with_the_reason(tmp_path):
    from hardware_profiles.device import resolve_device

    if resolve_device("cuda").mig is None:
        pytest.skip("not a MIG instance")
    doc = _bench(tmp_path, "--preset", "tiny", "--window-s", "1", "--trials", "1")
    assert doc["mfu"] is None and "MIG instance" in doc["mfu_reason"]
