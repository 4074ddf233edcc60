"""The eta ledger (reports/scaling/ledger.py, theory.md section 5): the terms sum exactly to
log2(eta_B/eta_A), each is the log2 ratio it claims, estimated inputs are labelled, different
logical work is refused, and the command prints text, JSON and a waterfall."""

import json
import math
import time

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.errors import ConfigError
from profiler.measurement import Energy, Window, summarise, window_row
from profiler.store import Store
from reports.scaling.ledger import differences, ledger, ledger_from_store, sweep_ledger, sweep_of

MODEL = {"n_layers": 2, "d_model": 64, "vocab_size": 256}


def add_run(store, variant, *, peak, mfus, powers, devices=1, estimated=False, sweep="s1",
            model=MODEL, flops_per_token=1e6, seq=64, peak_source="profile"):
    """A stored ok run whose windows reach the given MFUs (against the total ``peak``) at the
    given total powers, through the one record of a measurement (window_row, summarise)."""
    time.sleep(0.002)  # distinct start times: the sweep's reference is its oldest run
    run_id = store.start_run(
        scenario="train", preset="tiny", variant=variant, device="Test GPU", device_type="cuda",
        attention_convention="full", environment={},
        config={"model": model, "batch_size": 4, "seq_len": seq, "sweep_id": sweep,
                "device": {"profile": "nvidia-h100-sxm"}})
    rows = []
    for i, (mfu, power) in enumerate(zip(mfus, powers)):
        duration = 2.0
        flops = mfu * (peak or 1e12) * duration
        w = Window(window=i, steps=10, duration_s=duration, tokens=flops / flops_per_token,
                   logical_flops=flops, logical_flops_per_token=flops_per_token,
                   attention_convention="full", precision="bf16", peak_flops_per_s=peak,
                   peak_source=peak_source, energy=Energy(power * duration, "nvml", "gpu", estimated),
                   device_key="k", devices=devices)
        row = window_row(w)
        store.add_result(run_id, row)
        rows.append(row)
    store.set_run_summary(run_id, summarise(rows), None)
    store.finish_run(run_id, "ok")
    return store.find_run(run_id)


@pytest.fixture
def store():
    return Store(memory=True)


def test_terms_sum_exactly_and_each_is_its_log2_ratio(store):
    a = add_run(store, "bf16", peak=989.5e12, mfus=[0.30, 0.32, 0.31], powers=[600, 620, 610])
    # Another device (twice the peak), better utilisation, more power; two devices in B.
    b = add_run(store, "bf16+compile", peak=2 * 2250e12, devices=2, mfus=[0.45, 0.47, 0.46],
                powers=[1800, 1900, 1850])
    doc = ledger(a, b)
    terms = {t["key"]: t["doublings"] for t in doc["terms"]}
    assert sum(terms.values()) == pytest.approx(doc["total_doublings"], abs=1e-12)
    assert abs(terms["residual"]) < 1e-9  # eta = MFU * F / P holds window by window
    gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
    assert terms["hardware"] == pytest.approx(math.log2(2250 / 989.5))  # per device
    assert terms["utilisation"] == pytest.approx(math.log2(gm([0.45, 0.47, 0.46]) / gm([0.30, 0.32, 0.31])))
    assert terms["power"] == pytest.approx(-math.log2(gm([900, 950, 925]) / gm([600, 620, 610])))
    eta_a = [m * 989.5e12 / p for m, p in zip([0.30, 0.32, 0.31], [600, 620, 610])]
    eta_b = [m * 4500e12 / p for m, p in zip([0.45, 0.47, 0.46], [1800, 1900, 1850])]
    assert doc["total_doublings"] == pytest.approx(math.log2(gm(eta_b) / gm(eta_a)))
    for t in doc["terms"]:
        if t["ci_low"] is not None:
            assert t["ci_low"] <= t["doublings"] <= t["ci_high"]
    util = next(t for t in doc["terms"] if t["key"] == "utilisation")
    assert util["ci_low"] > 0  # a clear gain: its interval excludes 0
    assert not doc["total_estimated"] and not any(t["estimated"] for t in doc["terms"])


def test_estimated_energy_labels_the_power_term_and_the_total(store):
    a = add_run(store, "fp32", peak=1e12, mfus=[0.2, 0.21], powers=[50, 51], estimated=True)
    b = add_run(store, "bf16", peak=1e12, mfus=[0.4, 0.41], powers=[50, 52], estimated=True)
    doc = ledger(a, b)
    labels = {t["key"]: t["estimated"] for t in doc["terms"]}
    assert labels["power"] and doc["total_estimated"]
    assert not labels["utilisation"] and not labels["hardware"]
    assert next(t for t in doc["terms"] if t["key"] == "hardware")["doublings"] == 0.0


def test_different_logical_work_is_refused_with_the_fields_named(store):
    a = add_run(store, "bf16", peak=1e12, mfus=[0.2, 0.2], powers=[50, 50])
    b = add_run(store, "bf16", peak=1e12, mfus=[0.2, 0.2], powers=[50, 50], seq=128,
                model={**MODEL, "d_model": 128}, flops_per_token=2e6)
    assert differences(a, b) == ["model shape", "seq", "logical FLOP/token"]
    with pytest.raises(ConfigError, match="model shape, seq, logical FLOP/token"):
        ledger(a, b)


def test_a_run_without_a_peak_cannot_be_decomposed(store):
    a = add_run(store, "bf16", peak=1e12, mfus=[0.2, 0.2], powers=[50, 50])
    b = add_run(store, "bf16", peak=None, mfus=[0.2, 0.2], powers=[50, 50],
                peak_source="no profile for this device")
    doc = ledger(a, b)
    assert doc["total_doublings"] is None and doc["terms"] == []
    assert "no dense peak" in doc["reason"] and "no profile" in doc["reason"]


def test_sweep_ledger_is_against_the_oldest_run(store):
    ref = add_run(store, "fp32", peak=1e12, mfus=[0.2, 0.21], powers=[50, 50])
    add_run(store, "bf16", peak=1e12, mfus=[0.4, 0.42], powers=[50, 50])
    add_run(store, "other", peak=1e12, mfus=[0.4, 0.42], powers=[50, 50], sweep="s2")
    runs = sweep_of(store.runs(), store.find_run(ref["id"][:8]))
    assert [r["variant"] for r in runs] == ["fp32", "bf16"]
    doc = sweep_ledger(runs)
    assert doc["reference"]["run_id"] == ref["id"] and len(doc["ledgers"]) == 1
    assert doc["ledgers"][0]["total_doublings"] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ConfigError, match="both"):
        ledger_from_store(store, baseline=ref["id"], sweep=ref["id"])


def test_ledger_command_text_json_and_plot(tmp_path):
    db = str(tmp_path / "e.db")
    store = Store(db)
    a = add_run(store, "fp32", peak=1e12, mfus=[0.2, 0.21], powers=[50, 51], estimated=True)
    b = add_run(store, "bf16", peak=1e12, mfus=[0.4, 0.41], powers=[50, 52], estimated=True)
    runner = CliRunner()
    out = runner.invoke(cli, ["ledger", "--baseline", a["id"][:8], "--run", b["id"][:8], "--db", db,
                              "--plot", str(tmp_path / "w.png")])
    assert out.exit_code == 0, out.output
    for text in ("utilisation (logical MFU)", "power drawn", "consistency residual", "(estimated)",
                 "total log2(eta_B/eta_A)"):
        assert text in out.output
    assert (tmp_path / "w.png").stat().st_size > 1000
    doc = json.loads(runner.invoke(cli, ["ledger", "--sweep", a["id"][:8], "--db", db, "--json"]).output)
    assert doc["kind"] == "sweep" and doc["ledgers"][0]["run"]["run_id"] == b["id"]
    missing = runner.invoke(cli, ["ledger", "--run", b["id"][:8], "--db", db])
    assert missing.exit_code == 1 and "--baseline" in missing.output


@pytest.mark.slow
def test_cpu_sweep_fp32_autocast_bf16_compile(tmp_path):
    """The done-when of issue 18: a real sweep on this CPU; every ledger's terms sum exactly to
    its total and the consistency residual is ~0."""
    from harness.runner import BenchConfig, run_sweep

    store = Store(str(tmp_path / "sweep.db"))
    runs = run_sweep(BenchConfig(preset="tiny", variants=("fp32", "bf16-autocast", "bf16", "compile"),
                                 steps=2, trials=2, warmup_steps=1, device="cpu", quality=False), store)
    doc = sweep_ledger(sweep_of(store.runs(), runs[0]))
    assert len(doc["ledgers"]) == 3
    decomposed = [d for d in doc["ledgers"] if d["total_doublings"] is not None]
    # compile needs a C compiler and may be skipped; the precisions need nothing
    assert {d["run"]["variant"] for d in decomposed} >= {"bf16-autocast", "bf16"}, \
        [d["reason"] for d in doc["ledgers"]]
    for d in decomposed:
        assert sum(t["doublings"] for t in d["terms"]) == pytest.approx(d["total_doublings"], abs=1e-12)
        assert abs(next(t for t in d["terms"] if t["key"] == "residual")["doublings"]) < 1e-9


def _shown_eta(text: str) -> float:
    """A figure as ``si`` prints it: ``1.2346 GFLOP/J`` -> 1.2346e9."""
    import re

    m = re.fullmatch(r"([\d.e+-]+) ?([kMGTP]?)FLOP/J", text.strip())
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}[m.group(2)]


def test_the_total_is_log2_of_the_two_figures_shown(tmp_path):
    """Issue 22 item 10: the ledger prints the figures its total is made of (geometric means),
    and beside them the medians report shows with their own log2 ratio; skewed windows make
    the two summaries differ, and each printed total matches its printed figures."""
    import re

    db = str(tmp_path / "l.db")
    store = Store(db)
    a = add_run(store, "fp32", peak=1e12, mfus=[0.2, 0.2, 0.5], powers=[50, 60, 40])
    b = add_run(store, "bf16", peak=1e12, mfus=[0.4, 0.9, 0.9], powers=[50, 45, 80])
    out = CliRunner().invoke(cli, ["ledger", "--baseline", a["id"][:8], "--run", b["id"][:8],
                                   "--db", db])
    assert out.exit_code == 0, out.output
    text = out.output
    geo = re.search(r"eta (\S+ ?\S*FLOP/J) -> (\S+ ?\S*FLOP/J) \(geometric means", text)
    med = re.search(r"report's medians (\S+ ?\S*FLOP/J) -> (\S+ ?\S*FLOP/J): ([+-][\d.]+) doublings",
                    text)
    total = float(re.search(r"total log2\(eta_B/eta_A\)\s+([+-][\d.]+)", text).group(1))
    assert geo and med, text
    assert total == pytest.approx(math.log2(_shown_eta(geo.group(2)) / _shown_eta(geo.group(1))),
                                  abs=2e-3)
    assert float(med.group(3)) == pytest.approx(
        math.log2(_shown_eta(med.group(2)) / _shown_eta(med.group(1))), abs=2e-3)
    # the report's figure is the stored median: the line names it, whatever the gap
    doc = ledger(store.find_run(a["id"]), store.find_run(b["id"]))
    assert doc["median_doublings"] == pytest.approx(math.log2(
        b["summary"]["eta_flops_per_j"] / a["summary"]["eta_flops_per_j"]))
    assert abs(doc["median_doublings"] - doc["total_doublings"]) > 0.01  # the summaries differ
