"""The tracker in a user loop, its FLOP sources, the node aggregation, and integrations."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import torch

from harness.model import Transformer
from harness.presets import get_preset
from profiler.distributed import aggregate as aggregate_windows
from profiler.errors import ConfigError
from profiler.measurement import Energy, Window, window_row
from profiler.store import Store
from profiler.tracker import Tracker

TINY = get_preset("tiny")


def rank_window(rank, key, duration, tokens, energy, energy_reason=None):
    return Window(window=0, steps=1, duration_s=duration, tokens=tokens,
                  logical_flops=tokens * 10.0, logical_flops_per_token=10.0,
                  attention_convention="full", precision="bf16", peak_flops_per_s=1e12,
                  peak_source="test", device_key=key, scope="rank", rank=rank,
                  energy=Energy(energy, "nvml_counter", "gpu_board", False, energy_reason))


def aggregate(windows):
    """The node row of per-rank windows, as the recorder stores it."""
    return window_row(aggregate_windows(windows))


def test_aggregate_counts_a_shared_gpu_once():
    node = aggregate([rank_window(0, "gpu:a", 2.0, 100, 500.0),
                      rank_window(1, "gpu:a", 2.1, 100, 510.0)])
    assert node["devices"] == 1 and node["ranks"] == 2
    assert node["energy_j"] == 510.0  # once, from the longest window
    assert node["duration_s"] == 2.1 and node["tokens"] == 200
    assert node["logical_flops"] == 2000.0
    assert node["mfu"] == pytest.approx(2000.0 / 2.1 / 1e12)  # one device's peak


def test_aggregate_sums_distinct_gpus():
    node = aggregate([rank_window(0, "gpu:a", 2.0, 100, 500.0),
                      rank_window(1, "gpu:b", 3.0, 120, 700.0)])
    assert node["energy_j"] == 1200.0 and node["duration_s"] == 3.0
    assert node["eta_flops_per_j"] == pytest.approx(2200.0 / 1200.0)
    assert node["peak_flops_per_s"] == 2e12


def test_aggregate_missing_energy_is_null_with_reason():
    node = aggregate([rank_window(0, "gpu:a", 1.0, 10, 5.0),
                      rank_window(1, "gpu:b", 1.0, 10, None, energy_reason="NVML failed")])
    assert node["energy_j"] is None and node["eta_flops_per_j"] is None
    assert "gpu:b: NVML failed" in node["energy_reason"]


def train_loop(tracker, steps, model=None):
    model = model or Transformer(TINY.model)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randint(0, TINY.model.vocab_size, (4, 65))
    for _ in range(steps):
        model(x[:, :-1], x[:, 1:]).backward()
        opt.step()
        opt.zero_grad()
        tracker.step(tokens=4 * 64)
    return model


def test_tracker_in_a_loop_stores_windows(db_path, monkeypatch):
    syncs = []
    monkeypatch.setattr(Tracker, "_sync", lambda self: syncs.append(1))
    lines = []
    with Tracker(model_config=TINY.model, seq_len=64, precision="fp32", window_steps=4, warmup_steps=0,
                 store=db_path, printer=lines.append) as tracker:
        train_loop(tracker, 10)
    # Synchronised only at window edges: the first open, 3 closes (4 + 4 + 2 steps), 2 reopens.
    assert len(syncs) == 6
    assert len(lines) == 3 and "tokens/s" in lines[0] and "(estimated)" in lines[0]
    run = Store(db_path).runs()[0]
    assert run["status"] == "ok" and run["command"] == "tracker"
    assert [r["window"] for r in run["results"]] == [0, 1, 2]
    assert all(r["scope"] == "node" for r in run["results"])
    assert run["results"][0]["logical_flops"] == 4 * 4 * 64 * 884736
    assert run["summary"]["windows"] == 3 and run["summary"]["energy_estimated"] is True


def test_flops_sources_agree():
    model = Transformer(TINY.model)
    x = torch.randint(0, TINY.model.vocab_size, (2, 64))
    given = Tracker(flops_per_token=884736, meter=False, printer=None)
    counted = Tracker(model=model, example_input=x, meter=False, printer=None)
    accounted = Tracker(model_config=TINY.model, seq_len=64, meter=False, printer=None)
    assert given.flops_per_token == counted.flops_per_token == accounted.flops_per_token
    assert "FlopCounterMode" in counted.flops_source
    inference = Tracker(model=model, example_input=x, training=False, meter=False, printer=None)
    assert inference.flops_per_token == 884736 / 3


def test_precision_follows_the_model_and_the_device(db_path):
    model = Transformer(TINY.model)
    fp32 = Tracker(model=model, model_config=TINY.model, seq_len=64, meter=False, printer=None)
    assert (fp32.variant, fp32.precision, fp32.precision_source) == \
        ("fp32", "fp32", "model parameters")
    bf16 = Tracker(model=Transformer(TINY.model).to(torch.bfloat16), flops_per_token=1.0,
                   meter=False, printer=None)
    assert (bf16.precision, bf16.precision_source) == ("bf16", "model parameters")
    bare = Tracker(flops_per_token=1.0, device="cpu", meter=False, printer=None)
    assert (bare.precision, bare.precision_source) == ("fp32", "device default")
    lines = []
    with Tracker(flops_per_token=1e6, precision="bf16-autocast", window_steps=1, warmup_steps=0, store=db_path,
                 meter=False, printer=lines.append) as tracker:
        tracker.step(10)
        tracker.step(10)
    assert "precision bf16-autocast (given)" in lines[0] and "dense bf16 peak" in lines[0]
    assert "precision" not in lines[1].split("peak")[1]  # stated once, on the first line
    run = Store(db_path).runs()[0]
    assert run["variant"] == "bf16-autocast"
    assert run["config"]["precision"] == "bf16" and run["config"]["precision_source"] == "given"
    assert run["results"][0]["precision"] == run["results"][0]["variant_precision"] == "bf16"


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ConfigError, match="bf16-autocast"):
        Tracker(flops_per_token=1.0, precision="bfloat16", meter=False, printer=None)


def test_without_a_meter_the_energy_method_is_na_as_in_bench(db_path):
    lines = []
    with Tracker(flops_per_token=1e6, window_steps=1, warmup_steps=0, store=db_path, meter=False,
                 printer=lines.append) as tracker:
        tracker.step(10)
    row = Store(db_path).runs()[0]["results"][0]
    assert row["energy_method"] is None and "metering is off" in row["energy_reason"]
    assert "[n/a]" in lines[0] and "none" not in lines[0]
    # The reasons bench rows carry are carried here too, never a bare None.
    assert "etameter calibrate" in row["ceiling_reason"] and row["energy_net_reason"]
    assert row["variant_peak_reason"] == row["mfu_reason"]
    assert row["mfu_vs_variant_peak"] == row["mfu"]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one"),
    ({"flops_per_token": 1.0, "model_config": TINY.model, "seq_len": 64}, "exactly one"),
    ({"model_config": TINY.model}, "needs seq_len"),
    ({"flops_per_token": -1.0}, "must be positive"),
    ({"flops_per_token": 1.0, "window_steps": 0}, "window_steps"),
])
def test_tracker_bad_input(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Tracker(meter=False, printer=None, **kwargs)


def test_a_failing_loop_is_recorded(db_path):
    with pytest.raises(RuntimeError):
        with Tracker(flops_per_token=1e6, store=db_path, window_steps=2, warmup_steps=0, printer=None) as tracker:
            tracker.step(100)
            raise RuntimeError("loss exploded")
    run = Store(db_path).runs()[0]
    assert run["status"] == "failed" and "loss exploded" in run["error"]


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    with Tracker(flops_per_token=1e6, window_steps=2, warmup_steps=0, tensorboard_dir=str(tmp_path / "tb"),
                 printer=None) as tracker:
        for _ in range(4):
            tracker.step(100)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))


def test_step_overhead_is_small():
    """Documented in docs/tracker.md: step() only counts (well under a microsecond)."""
    import time

    tracker = Tracker(flops_per_token=1.0, window_steps=10**9, meter=False, printer=None)
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        tracker.step(256)
    assert (time.perf_counter() - t0) / n < 20e-6


def test_node_benchmark_with_two_gloo_processes(db_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "--nproc", "2", "--preset", "tiny",
         "--steps", "4", "--trials", "2", "--warmup", "1", "--device", "cpu", "--db", db_path,
         "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["world_size"] == 2 and len(doc["windows"]) == 2
    conn = sqlite3.connect(db_path)
    rows = conn.execute("select window, scope, rank, energy_j, duration_s, logical_flops "
                        "from results order by window, scope, rank").fetchall()
    for window in (0, 1):
        node = [r for r in rows if r[0] == window and r[1] == "node"]
        ranks = [r for r in rows if r[0] == window and r[1] == "rank"]
        assert len(node) == 1 and sorted(r[2] for r in ranks) == [0, 1]
        node = node[0]
        # Both ranks share this machine's CPU: its energy is counted once, not twice.
        longest = max(ranks, key=lambda r: r[4])
        assert node[3] == pytest.approx(longest[3])
        assert node[3] < sum(r[3] for r in ranks)
        assert node[4] == pytest.approx(longest[4])
        assert node[5] == pytest.approx(sum(r[5] for r in ranks))
    assert conn.execute("select status from runs").fetchall() == [("ok",)]


def test_hugging_face_trainer_with_the_callback(tmp_path, db_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from profiler.integrations.hf import EtameterTrainerCallback

    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=128,
                                     n_positions=64)
    model = transformers.GPT2LMHeadModel(config)
    data = [{"input_ids": torch.randint(0, 128, (32,)), "labels": torch.randint(0, 128, (32,))}
            for _ in range(24)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=2,
        report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no",
        include_num_input_tokens_seen=True, disable_tqdm=True)
    example = {"input_ids": data[0]["input_ids"].unsqueeze(0)}
    callback = EtameterTrainerCallback(example_input=example, window_steps=2, warmup_steps=0, store=db_path,
                                       printer=None)
    transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()
    run = Store(db_path).runs()[0]
    assert run["status"] == "ok" and len(run["results"]) == 3
    assert run["results"][0]["tokens_per_s"] > 0
    assert "FlopCounterMode" in run["config"]["flops_source"]
    # An fp32 model without bf16=/fp16= autocast is held against the fp32 peak.
    assert run["variant"] == "fp32" and run["config"]["precision_source"] == "model parameters"


def test_the_callbacks_follow_the_frameworks_precision():
    from types import SimpleNamespace

    pytest.importorskip("transformers")
    from profiler.integrations import hf

    assert hf._trainer_precision(SimpleNamespace(bf16=True, fp16=False)) == {
        "precision": "bf16-autocast", "precision_source": "TrainingArguments(bf16=True)"}
    assert hf._trainer_precision(SimpleNamespace(bf16=False, fp16=False)) == {}
    pytest.importorskip("lightning.pytorch")
    from profiler.integrations import lightning

    assert lightning._trainer_precision(SimpleNamespace(precision="bf16-mixed"))["precision"] \
        == "bf16-autocast"
    assert lightning._trainer_precision(SimpleNamespace(precision="bf16-true"))["precision"] \
        == "bf16"


def test_lightning_with_the_callback(db_path):
    pl = pytest.importorskip("lightning.pytorch")
    from profiler.integrations.lightning import EtameterCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = Transformer(TINY.model)

        def training_step(self, batch, batch_idx):
            (x,) = batch
            return self.model(x[:, :-1], x[:, 1:])

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters())

    data = torch.utils.data.TensorDataset(torch.randint(0, TINY.model.vocab_size, (24, 65)))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    class Metrics:  # stands in for a MetricsExporter: the callback's tracker feeds it
        rows, closed = [], False

        def observe(self, row):
            self.rows.append(row)

        def close(self):
            self.closed = True

    metrics = Metrics()
    callback = EtameterCallback(model_config=TINY.model, seq_len=64, window_steps=2, warmup_steps=0,
                                store=db_path, printer=None, metrics=metrics,
                                tokens_fn=lambda batch: batch[0][:, :-1].numel())
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[callback])
    trainer.fit(Module(), loader)
    run = Store(db_path).runs()[0]
    assert run["status"] == "ok" and len(run["results"]) == 3
    assert run["results"][0]["logical_flops"] == 2 * 4 * 64 * 884736
    assert run["variant"] == "fp32"
    assert run["config"]["precision_source"] == "Lightning Trainer(precision='32-true')"
    assert [r["energy_j"] for r in metrics.rows] == [r["energy_j"] for r in run["results"]]
    assert metrics.closed
