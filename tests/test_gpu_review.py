"""The defects a review of the GPU paths predicts (issue 21, item 3), each exercised on the CPU
where its logic runs without a GPU (tests/test_gpu.py has the GPU halves)."""

import types

import torch
from torch import nn

from harness.presets import get_preset
from harness.variants import parse_variant

CPU = torch.device("cpu")


# -- fp8 against bf16 training: like with like ------------------------------------------------

def test_fp8_training_on_a_gpu_keeps_fp32_master_weights_like_bf16_autocast():
    for token in ("fp8", "fp8-tensorwise", "fp8-rowwise"):
        v = parse_variant(token, "train", "cuda")
        assert v.precision == "bf16-autocast" and v.weight_dtype == torch.float32, v.name
    assert parse_variant("fp8", "prefill", "cuda").precision == "bf16"  # inference unchanged
    assert parse_variant("int8-dynamic", "prefill", "cuda").precision == "bf16"


def _run(variant, tokens_per_s, *, quality_ok=True, scenario="train", status="ok", **fields):
    v = parse_variant(variant, scenario, "cuda")
    return {"id": variant, "variant": v.name, "status": status, "scenario": scenario,
            "quality_ok": quality_ok, "config": {"variant": v.to_dict()},
            "summary": {"quality": {"reason": fields.get("quality_reason")}},
            "results": [{"tokens_per_s": t} for t in tokens_per_s]}


def test_a_comparison_says_what_differs_and_when_it_is_not_like_with_like():
    from reports.compare import comparison

    ref = _run("bf16-autocast+compile", [100, 101, 99])
    same_base = _run("bf16-autocast+fp8-tensorwise+compile", [150, 151, 149])
    mixed = _run("bf16+fp8-tensorwise", [160, 161, 159])  # bf16 weights, no compile
    rows = comparison([ref, same_base, mixed], ref)
    assert rows[1]["differences"] == ["fp8: tensorwise (reference none)"]
    assert rows[1]["verdict"] == "faster"
    assert "not like with like" in rows[2]["verdict"] and "compile" in rows[2]["verdict"]
    assert any("precision" in d for d in rows[2]["differences"])


# -- a failed quality guard is in the status line and every verdict ---------------------------

def test_a_variant_failing_its_quality_guard_says_so_in_status_and_verdict():
    from reports.bench_view import bench_lines
    from reports.caveats import status_label
    from reports.compare import comparison

    ref = _run("bf16", [100, 101, 99], scenario="prefill")
    bad = _run("int4-weight-only", [300, 301, 299], scenario="prefill", quality_ok=False,
               quality_reason="relative error 0.12 (max 0.05)")
    rows = comparison([ref, bad], ref)
    assert rows[1]["verdict"].startswith("QUALITY FAILED (relative error 0.12")
    assert rows[1]["verdict"].endswith(": faster")
    assert rows[1]["status_label"] == "ok, QUALITY FAILED" == status_label(bad)
    assert status_label(ref) == "ok"
    # the reference's own failure is named in every verdict against it
    rows = comparison([bad, ref], bad)
    assert "the reference bf16+int4-weight-only FAILED its quality guard" in rows[1]["verdict"]
    bad["config"].update(device={"name": "x", "type": "cuda"}, batch_size=1, seq_len=8)
    bad["summary"], bad["preset"] = {}, "gpt2-124m"
    assert bench_lines(bad)[0][1] == "int4-weight-only (ok, QUALITY FAILED)"


# -- eager int8 weight-only decode is marked eager-only ---------------------------------------

def test_eager_int8_weight_only_decode_verdicts_are_marked_eager_only():
    from reports.compare import comparison

    ref = _run("bf16", [100, 101, 99], scenario="decode")
    eager = _run("int8-weight-only", [60, 61, 59], scenario="decode")
    compiled = _run("int8-weight-only+compile", [180, 181, 179], scenario="decode")
    rows = comparison([ref, eager, compiled], ref)
    assert "eager-only" in rows[1]["verdict"] and "eager-only" not in rows[2]["verdict"]
    prefill = _run("int8-weight-only", [60, 61, 59], scenario="prefill")
    assert "eager-only" not in comparison([_run("bf16", [1, 1.1], scenario="prefill"),
                                           prefill])[1]["verdict"]


# -- int8 dynamic's silent float fallback (torchao safe_int_mm) -------------------------------

def test_int8_dynamic_kernel_check_flags_float_matmuls_in_place_of_int8():
    from collections import Counter

    from harness.variants.quant import QuantConverter

    v = parse_variant("int8-dynamic", "decode", "cuda")
    conv = QuantConverter()
    assert conv.declares_kernel(v)
    assert conv.kernel_reason(v, Counter({"aten::_int_mm": 9}), 9, 0, 32) is None
    # CUDA at M <= 16: _int_mm is attempted, refused, and a float32 mm runs instead
    reason = conv.kernel_reason(v, Counter({"aten::_int_mm": 9, "aten::mm": 9}), 9, 0, 4)
    assert reason and "fell back" in reason and "--batch 17" in reason
    assert not conv.declares_kernel(parse_variant("int8-weight-only", "decode", "cuda"))


def test_int8_dynamic_run_that_falls_back_is_skipped_with_the_reason(db_path, monkeypatch):
    """The real torchao path: off CPU dispatch, safe_int_mm falls back to a plain matmul."""
    import torchao.kernel.intmm as intmm

    from harness.plan import BenchConfig
    from harness.runner import run_bench
    from profiler.store import Store

    cfg = BenchConfig(preset="tiny", scenario="decode", variants=("int8-dynamic",),
                      device="cpu", steps=1, trials=1, warmup_steps=0, quality=False)
    run = run_bench(cfg, Store(db_path))
    assert run["status"] == "ok", run.get("error")
    assert run["summary"]["variant_info"]["kernel_check"]["ops"]["aten::_int_mm"] > 0
    monkeypatch.setattr(intmm, "_is_device", lambda *a, **k: False)
    run = run_bench(cfg, Store(db_path))
    assert run["status"] == "skipped" and "aten::_int_mm x0" in run["error"]


# -- every compilation is counted; warm-up lasts until no step compiles -----------------------

def test_compile_log_counts_every_compilation_by_phase():
    from harness.variants.compile import CompileLog

    torch._dynamo.reset()
    fn = torch.compile(lambda x: (x * 2).sin(), backend="eager")
    log = CompileLog().start()
    try:
        fn(torch.ones(3))
        log.phase("timed")
        fn(torch.ones(3))
        fn(torch.ones(5))  # a new shape recompiles
    finally:
        log.stop()
    s = log.summary()
    assert s["compile_count"] == 2 and s["compiles_by_phase"]["timed"]["count"] == 1
    assert s["compile_time_s"] > 0 and s["compile_graphs"] == 2 and s["compile_note"]
    fn(torch.ones(7))  # stopped: no longer counted
    assert log.count == 2
    assert CompileLog(active=False).start().summary()["compile_count"] is None


def test_warm_up_continues_while_a_step_still_compiles():
    from harness.execute import _warm_up
    from harness.variants.compile import CompileLog

    log = CompileLog(active=False)
    steps = []

    def step():
        steps.append(1)
        if len(steps) <= 3:  # the first three steps compile (new shapes)
            log._started()
            log._ended()

    scenario = types.SimpleNamespace(step=step)
    ctx = types.SimpleNamespace(synchronize=lambda: None)
    _warm_up(scenario, ctx, 1, lambda *a: None, log)
    assert len(steps) == 4  # first + 1 warm-up + 2 more while still compiling
    steps.clear()
    log.by_phase.clear()
    _warm_up(types.SimpleNamespace(step=lambda: steps.append(1)), ctx, 2, lambda *a: None, log)
    assert len(steps) == 3


# -- weights are initialised on the target device ---------------------------------------------

def test_the_reference_model_is_initialised_on_the_target_device(monkeypatch):
    from harness.scenarios import TrainScenario

    devices = []
    real = nn.init.normal_

    def recording(tensor, *args, **kwargs):
        devices.append(tensor.device.type)
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(nn.init, "normal_", recording)
    scenario = TrainScenario(get_preset("tiny-llama").model, batch_size=1, seq_len=4,
                             device=torch.device("meta"), variant=parse_variant("fp32", "train",
                                                                                "cpu"))
    model = scenario.build_model()
    assert devices and set(devices) == {"meta"}
    assert {p.device.type for p in model.parameters()} == {"meta"}


# -- idle power waits until power has settled -------------------------------------------------

def test_idle_waits_until_power_settles_and_says_so():
    from harness.idle import settle_power, wait_before_idle

    clock = [0.0]
    readings = iter([300, 220, 160, 120, 101, 100, 100.5, 99.8, 100])

    def read(seconds):
        clock[0] += seconds
        return next(readings)

    out = settle_power(read, clock=lambda: clock[0])
    assert out["how"] == "settled" and out["powers_w"][-3:] == [101, 100, 100.5]
    assert out["waited_s"] == 7.0  # 300 -> 120 W was still falling: not idle yet
    def falling_read(seconds):  # 10% lower every window: never settled
        clock[0] += seconds
        return 500 * 0.9 ** clock[0]

    falling = settle_power(falling_read, clock=lambda: clock[0], max_s=5)
    assert falling["how"] == "not settled" and "--cooldown-s" in falling["reason"]
    waited = []
    out = wait_before_idle(4.0, read, sleep=waited.append)
    assert out["how"] == "cooldown" and waited == [4.0] and "--cooldown-s 4" in out["reason"]
    assert settle_power(lambda s: None)["how"] == "unmeasured"


def test_a_bench_idle_window_records_how_it_waited(db_path):
    from harness.plan import BenchConfig
    from harness.runner import run_bench
    from profiler.store import Store

    cfg = BenchConfig(preset="tiny", device="cpu", steps=1, trials=1, warmup_steps=0,
                      idle_s=0.1, cooldown_s=0.1, quality=False)
    idle = run_bench(cfg, Store(db_path))["summary"]["idle"]
    assert idle["idle_settle"]["how"] == "cooldown" and idle["idle_power_w"] is not None


# -- the train quality check keeps its weights on the device when memory allows ---------------

def test_train_quality_snapshot_stays_on_the_device_when_memory_allows():
    from harness.quality import snapshot_state

    model = nn.Linear(64, 64)
    size = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    kept, where = snapshot_state(model, torch.device("cuda"), free_bytes=100 * size)
    assert where == "device"
    assert torch.equal(kept["weight"], model.weight) and kept["weight"] is not model.weight
    _, where = snapshot_state(model, torch.device("cuda"), free_bytes=2 * size)
    assert where.startswith("cpu: the state dict")
    assert snapshot_state(model, CPU)[1] == "device"


# -- MIG: the instance's memory, and no whole-GPU peak ----------------------------------------

def test_a_mig_instance_gets_its_memory_and_no_mfu_with_the_reason():
    from hardware_profiles.device import DeviceContext, gpu_context, mig_instance
    from hardware_profiles.identity import GpuIdentity
    from hardware_profiles.profiles import load_profiles

    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                                  multi_processor_count=60, total_memory=40 * 2**30)
    mig = mig_instance(props)
    assert mig == {"name": props.name, "uuid": None, "sm_count": 60, "memory_gib": 40.0}
    full = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", multi_processor_count=132,
                                 total_memory=80 * 2**30)
    assert mig_instance(full) is None
    assert mig_instance(full, "MIG-4f1c")["uuid"] == "MIG-4f1c"
    profiles = load_profiles()
    identity = GpuIdentity(0, "NVIDIA H100 80GB HBM3", "u1", 0x2330, 700.0, 80.0)
    whole = gpu_context(identity, 0, profiles)
    assert whole.profile_id and whole.peak("bf16").flops_per_s
    ctx = gpu_context(identity, 0, profiles, mig)
    peak = ctx.peak("bf16")
    assert peak.flops_per_s is None and "MIG instance" in peak.source and "--profile" in peak.source
    assert ctx.memory_gib == 40.0 and ctx.describe()["mig"] == mig
    again = DeviceContext.from_spec(ctx.to_spec(), profiles)
    assert again.mig == mig and again.peak("bf16").flops_per_s is None


# -- the counter-vs-integral agreement is a consistency check ---------------------------------

def test_the_selftest_says_counter_and_integral_agreement_is_a_consistency_check():
    from harness.selftest.summary import CONSISTENCY_NOTE, markdown

    assert "same sensor" in CONSISTENCY_NOTE and "not a measure of accuracy" in CONSISTENCY_NOTE
    md = markdown({"mode": "gpu", "device": None, "torch": "x", "budget_s": 300,
                   "duration_s": 1, "ok": True, "consistency_note": CONSISTENCY_NOTE,
                   "estimate_note": "e", "phases": []})
    assert CONSISTENCY_NOTE in md

