"""One record of a measurement: bench, tracker and node (--nproc) rows come from one function,
and --nproc honours or refuses every bench option."""

import dataclasses

import pytest
import torch

from harness.model import Transformer
from harness.presets import get_preset
from harness.runner import NPROC_SUPPORT, BenchConfig, check_nproc, make_plan, run_bench, run_sweep
from profiler import recorder
from profiler.errors import ConfigError
from profiler.measurement import FIELDS, ROW_COLUMNS, Energy, Window, summarise, window_row
from profiler.store import Store
from profiler.tracker import Tracker

TINY = get_preset("tiny")
#: Workload labels that must agree between a bench row and a tracker row of the same workload.
SAME_WORKLOAD = ("precision", "variant_precision", "attention_convention",
                 "logical_flops_per_token", "peak_flops_per_s", "energy_method", "energy_scope",
                 "energy_estimated", "scope", "ranks", "devices")


def _tracked(db_path, steps=4):
    model = Transformer(TINY.model)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randint(0, TINY.model.vocab_size, (4, 65))
    with Tracker(model_config=TINY.model, seq_len=64, precision="fp32", window_steps=2, warmup_steps=0,
                 store=db_path, printer=None) as tracker:
        for _ in range(steps):
            model(x[:, :-1], x[:, 1:]).backward()
            opt.step()
            opt.zero_grad()
            tracker.step(tokens=4 * 64)
    return tracker.run_id


@pytest.mark.slow
def test_bench_tracker_and_node_rows_are_one_record(db_path, monkeypatch):
    calls = []
    real = recorder.window_row
    monkeypatch.setattr(recorder, "window_row", lambda w: calls.append(w) or real(w))
    store = Store(db_path)
    bench = run_bench(BenchConfig(preset="tiny", steps=2, trials=2, warmup_steps=1, device="cpu",
                                  quality=False), store)
    tracked = store.get_run(_tracked(db_path)) | {"results": None}
    tracked["results"] = store.results(tracked["id"])
    assert len(calls) == len(bench["results"]) + len(tracked["results"]) == 4
    node = run_sweep(BenchConfig(preset="tiny", steps=2, trials=2, warmup_steps=1, device="cpu",
                                 quality=False, nproc=2), store)[0]
    assert node["status"] == "ok", node["error"]
    columns = {"id", "run_id", *ROW_COLUMNS}
    for run in (bench, tracked, node):
        for row in run["results"]:
            assert set(row) == columns
    b, t = bench["results"][0], tracked["results"][0]
    for key in SAME_WORKLOAD:
        assert b[key] == t[key], key
    scopes = sorted(r["scope"] for r in node["results"] if r["window"] == 0)
    assert scopes == ["node", "rank", "rank"]
    for run in (bench, tracked, node):  # summaries: the same function over the node rows
        nodes = [r for r in run["results"] if r["scope"] == "node"]
        expected = summarise(nodes)
        for key in ("tokens_per_s", "mfu", "eta_flops_per_j", "energy_j", "flags"):
            assert run["summary"][key] == expected[key], (run["command"], key)


def test_every_field_is_in_the_row_and_the_row_has_no_other():
    w = Window(window=0, steps=2, duration_s=1.0, tokens=100, logical_flops=1e9,
               logical_flops_per_token=1e7, attention_convention="full", precision="fp32",
               peak_flops_per_s=1e10, peak_source="test", energy=Energy(5.0, "rapl", "cpu_package",
                                                                          False), device_key="k")
    row = window_row(w)
    assert set(row) == {f.key for f in FIELDS}
    assert row["mfu"] == pytest.approx(0.1) and row["eta_flops_per_j"] == pytest.approx(2e8)
    assert row["avg_power_w"] == 5.0 and row["energy_net_j"] is None and row["energy_net_reason"]
    high = window_row(dataclasses.replace(w, ceiling_flops_per_s=2e10))
    assert "peak_below_ceiling" in high["flags"] and "too low" in high["peak_note"]
    assert high["mfu_vs_ceiling"] == pytest.approx(0.05)


#: bench options that are not BenchConfig fields, and what --nproc does with them.
CLI_ONLY = {"db_path": "rank 0 writes the node result there", "as_json": "as for one process",
            "slurm": "fills nnodes, node_rank, rdzv_endpoint and rdzv_id from SLURM_*",
            "show_progress": "rank 0's progress lines reach the parent's display"}
TOLERANCE = {"max_rel_err", "min_top1", "max_loss_dev"}


def test_nproc_accepts_or_refuses_every_bench_option():
    from harness.cli import cli

    assert set(NPROC_SUPPORT) == {f.name for f in dataclasses.fields(BenchConfig)}
    assert all(NPROC_SUPPORT.values())
    for param in cli.commands["bench"].params:
        if param.name in ("help",):
            continue
        target = "tolerance" if param.name in TOLERANCE else param.name
        assert target in NPROC_SUPPORT or target in CLI_ONLY, (
            f"bench option {param.opts[0]} says nothing about --nproc: add it to NPROC_SUPPORT")


def test_nproc_refuses_more_ranks_than_gpus():
    from hardware_profiles.device import DeviceContext

    fake_gpu = DeviceContext(type="cuda", name="Fake GPU", torch_device=torch.device("cuda", 0),
                             vendor="nvidia", memory_gib=80.0)
    plan = make_plan(BenchConfig(preset="tiny", nproc=torch.cuda.device_count() + 1), fake_gpu)
    with pytest.raises(ConfigError, match="--nproc .* needs .* GPUs"):
        check_nproc(plan)


@pytest.mark.slow
def test_nproc_honours_the_bench_options(db_path, tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('schema = 1\n[[device]]\nid = "x"\ndisplay_name = "X"\nvendor = "acme"\n'
                       'names = ["X"]\npeak_tflops = { bf16 = 100 }\nsources = { peak_tflops = "t" }\n')
    cfg = BenchConfig(preset="tiny", scenario="prefill", variants=("fp32", "fp32+sdpa-math"),
                      steps=2, trials=2, warmup_steps=1, device="cpu", attention_convention="causal",
                      idle_s=0.2, cooldown_s=0.1, seed=3, cpu_tdp_w=20.0, profile_files=(str(profile),),
                      nproc=2)
    runs = run_sweep(cfg, Store(db_path))
    assert [r["status"] for r in runs] == ["ok", "ok"], [r["error"] for r in runs]
    for run in runs:
        assert run["config"]["world_size"] == 2 and run["config"]["profile_files"] == [str(profile)]
        nodes = [r for r in run["results"] if r["scope"] == "node"]
        assert len(nodes) == 2 and all(r["ranks"] == 2 and r["devices"] == 1 for r in nodes)
        assert all(r["attention_convention"] == "causal" for r in nodes)
        assert all(r["idle_power_w"] is not None for r in nodes)
        assert run["summary"]["quality"]["kind"] == "logits"
        assert "--cpu-tdp-w" in run["config"]["meter"]["power_source"]
