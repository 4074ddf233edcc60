"""Like with like, with intervals: groups of comparable runs, ratios with their 95% interval
and verdict, and every view (compare, the sweep table, plots, HTML, the bench view) keeping
groups apart and showing intervals, bands and notes."""

import json
import re

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.errors import ConfigError
from profiler.stats import (INCONCLUSIVE, NO_DIFFERENCE, OVER, WITHIN, Interval, limit_verdict,
                            ratio_verdict)
from profiler.store import Store
from reports.bench_view import bench_lines
from reports.compare import (check_one_group, group_documents, group_fields, groups,
                             sweep_groups)
from reports.compare_table import COLUMNS, comparison_cells
from reports.numbers import Footnotes, ratio_text
from tests.test_reports import add_run

STALLED = (1.0, 1.0, 0.03)  # one window of three stalled, as on a shared 2-core VM


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def two_groups(db_path):
    """Sweep A: tiny prefill on one CPU, estimated meter. Sweep B: tiny-llama train, another
    meter. Each has fp32 and a faster variant, with throughputs that tell them apart."""
    store = Store(db_path)
    a = [add_run(store, "fp32", 4, 1000.0, sweep="A"),
         add_run(store, "bf16", 4, 1500.0, sweep="A")]
    b = [add_run(store, "fp32", 4, 50.0, sweep="B", preset="tiny-llama", scenario="train",
                 meter="rapl"),
         add_run(store, "bf16", 4, 60.0, sweep="B", preset="tiny-llama", scenario="train",
                 meter="rapl")]
    return db_path, store, a, b


def test_ratio_and_limit_verdicts():
    assert ratio_verdict(Interval(1.5, 1.2, 1.8), "faster", "slower") == "faster"
    assert ratio_verdict(Interval(0.5, 0.4, 0.6), "faster", "slower") == "slower"
    assert ratio_verdict(Interval(1.8, 0.9, 3.0)) == NO_DIFFERENCE
    assert ratio_verdict(None) is None
    assert limit_verdict(Interval(1.002, 1.001, 1.004), 1.01) == WITHIN
    assert limit_verdict(Interval(1.5, 1.2, 1.8), 1.01) == OVER
    assert limit_verdict(Interval(1.5, 0.9, 2.1), 1.01) == INCONCLUSIVE
    assert limit_verdict(None, 1.01) == INCONCLUSIVE


def test_group_key_names_every_field(two_groups):
    _, store, a, _ = two_groups
    run = store.find_run(a[0])
    assert group_fields(run) == {
        "model": "tiny", "scenario": "prefill", "batch_size": 4, "seq_len": 64, "ranks": 1,
        "device": run["device_key"], "attention_convention": "full", "meter": "estimated",
        "sweep": "A"}
    assert group_fields(run, across_sweeps=True)["sweep"] is None


def test_compare_never_mixes_groups(two_groups):
    db, _, a, b = two_groups
    doc = json.loads(invoke("compare", "--baseline", "fp32", "--db", db, "--json"))
    by_sweep = {g["sweep"]: g for g in doc["groups"]}
    assert set(by_sweep) == {"A", "B"}
    assert [r["run_id"] for r in by_sweep["A"]["rows"]] == a
    assert [r["run_id"] for r in by_sweep["B"]["rows"]] == b
    assert "tiny-llama" in by_sweep["B"]["title"] and "meter rapl" in by_sweep["B"]["title"]
    assert by_sweep["B"]["rows"][1]["speedup"] == pytest.approx(1.2, rel=0.01)
    text = invoke("compare", "--baseline", "fp32", "--db", db)
    titles = [line for line in text.splitlines() if "etameter compare:" in line]
    assert len(titles) == 2 and any("sweep A" in t for t in titles)


def test_html_report_has_a_section_per_group(two_groups, tmp_path):
    db, _, _, _ = two_groups
    page = tmp_path / "r.html"
    invoke("report", "--db", db, "--html", str(page))
    html = page.read_text()
    answers = [s for s in re.split(r"<h2[^>]*>", html) if ", against fp32</h2>" in s]
    assert len(answers) == 2 and all("faster</span> than fp32" in s for s in answers)
    sections = re.split(r"<h3[^>]*>", html)
    compared = [s for s in sections if ", against fp32</h3>" in s]
    assert len(compared) == 2
    for section in compared:
        body = section.split("<tbody>")[1].split("</tbody>")[0]
        rows = [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in body.split("</tr>") if tr]
        tokens = [row[2].split(" [")[0] for row in rows]
        speedups = re.findall(r"(\d+\.\d+)x (?:\(estimated\) )?\[", body)
        if "tiny-llama" in section.split("</h3>")[0]:
            assert tokens == ["50.5", "60.6"] and speedups == ["1.20"] * 3
        else:
            assert tokens == ["1.01 k", "1.51 k"] and speedups == ["1.50"] * 3


def test_runs_from_different_sweeps_compare_only_when_asked(db_path):
    store = Store(db_path)
    old = add_run(store, "fp32", 4, 1000.0)  # no sweep id: a sweep of its own
    add_run(store, "bf16", 4, 1200.0)
    newer = add_run(store, "fp32", 4, 1100.0)
    result = CliRunner().invoke(cli, ["compare", "--baseline", "fp32", "--db", db_path])
    assert result.exit_code == 1 and "--across-sweeps" in result.output
    doc = json.loads(invoke("compare", "--baseline", "fp32", "--across-sweeps", "--db", db_path,
                            "--json"))
    (group,) = doc["groups"]
    assert group["baseline_run"] == newer != old and group["sweep"] is None
    assert "across sweeps" in group["title"]
    assert "1 earlier run(s)" in group["notes"][0]


def test_named_runs_must_be_one_group(two_groups):
    db, _, a, b = two_groups
    result = CliRunner().invoke(cli, ["compare", "--run", a[0][:8], "--run", b[1][:8], "--db", db])
    assert result.exit_code == 1
    assert "differ in model: tiny, tiny-llama" in result.output
    assert "scenario: prefill, train" in result.output and "meter: estimated, rapl" in result.output
    doc = json.loads(invoke("compare", "--run", a[1][:8], "--run", a[0][:8], "--db", db, "--json"))
    rows = doc["groups"][0]["rows"]
    assert [r["run_id"] for r in rows] == [a[1], a[0]]  # the first named is the reference
    assert rows[1]["verdict"] == "slower"
    result = CliRunner().invoke(cli, ["compare", "--db", db])
    assert result.exit_code == 1 and "--baseline" in result.output


def test_a_skipped_run_without_a_meter_joins_its_group(db_path):
    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="S")
    add_run(store, "fp32+fp8", 4, 0, status="skipped", sweep="S")
    (members,) = groups(store.runs()).values()
    assert [r["variant"] for r in members] == ["fp32", "fp32+fp8"]
    with pytest.raises(ConfigError, match="batch_size: 4, 8"):
        check_one_group([store.runs()[0], store.find_run(add_run(store, "fp32", 8, 1.0))])


def test_a_stalled_window_gives_no_significant_difference(db_path):
    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="N", factors=STALLED)
    add_run(store, "bf16", 4, 1050.0, sweep="N")
    (group,) = sweep_groups(store.runs())
    bf16 = group["rows"][1]
    assert bf16["speedup_ci_low"] < 1.0 < bf16["speedup_ci_high"]
    assert bf16["speedup_significant"] is False and bf16["verdict"] == NO_DIFFERENCE
    cells, notes = comparison_cells(group["rows"])
    row = dict(zip(COLUMNS, cells[1]))
    assert row["speedup [95% interval]"].startswith("no significant difference [")
    assert not re.search(r"\d\.\d\dx", row["speedup [95% interval]"])
    assert row["verdict"] == NO_DIFFERENCE
    assert any(n.startswith("fp32: noisy:") for n in notes)


def test_ratio_text():
    assert ratio_text(1.84, 1.62, 2.09, True) == "1.84x [1.62, 2.09]"
    assert ratio_text(1.84, 0.9, 3.1, False) == "no significant difference [0.90, 3.10]"
    assert ratio_text(1.84, None, None, None) == "1.84x (no interval)"
    assert ratio_text(None, None, None, None) == "n/a"


def test_one_window_gives_no_verdict(db_path):
    store = Store(db_path)
    add_run(store, "fp32", 4, 1000.0, sweep="W", factors=(1.0,))
    add_run(store, "bf16", 4, 2000.0, sweep="W", factors=(1.0,))
    (group,) = sweep_groups(store.runs())
    bf16 = group["rows"][1]
    assert bf16["speedup"] == pytest.approx(2.0) and bf16["speedup_ci_low"] is None
    assert bf16["verdict"].startswith("n/a (fewer than two windows")


def test_a_shared_reason_is_noted_once():
    notes = Footnotes()
    reason = "no dense peak is known for this device " * 8
    for run in ("aaaa", "bbbb", "cccc"):
        notes.add(run, f"MFU n/a: {reason}")
    notes.add("aaaa", "compile time 3 s")
    assert notes.lines() == [f"aaaa, bbbb, cccc: MFU n/a: {reason}", "aaaa: compile time 3 s"]


def test_report_notes_a_long_reason_once(db_path):
    store = Store(db_path)
    for v in ("fp32", "bf16", "fp16"):
        run_id = add_run(store, v, 4, 1000.0)
        run = store.get_run(run_id)
        store.set_run_summary(run_id, {**run["summary"], "mfu": None, "mfu_reason": "x" * 300},
                              True)
    text = invoke("report", "--db", db_path, "--format", "markdown")
    assert text.count("x" * 300) == 1


def test_plots_give_a_panel_per_group(two_groups):
    from reports.plots import throughput_figure, variants_figure

    db, store, _, _ = two_groups
    fig = variants_figure(group_documents(store.runs()))
    titles = " ".join(sub.get_suptitle() for sub in fig.subfigs).replace("\n", " ")
    assert len(fig.axes) == 4 and len(fig.subfigs) == 2 and "tiny-llama" in titles and "sweep A" in titles
    for b in (8, 16):
        add_run(store, "fp32", b, 1000.0 + b, sweep=f"b{b}")
        add_run(store, "fp32", b, 50.0 + b, sweep=f"l{b}", preset="tiny-llama",
                scenario="train", meter="rapl")
    fig = throughput_figure(store.runs(), "batch_size")
    assert len(fig.axes) == 2  # one panel per group: tiny prefill, tiny-llama train
    for ax in fig.axes:
        points = {c.get_label(): list(c.lines[0].get_xdata()) for c in ax.containers}
        assert points == {"fp32": [4, 8, 16], "bf16": [4]}  # each line its own series' points
        assert "model" in ax.get_title()


def _summary(**extra):
    base = {"windows": 4, "steps_per_window": 5, "step_time_s": 0.1, "tokens_per_s_spread": 0.02,
            "logical_flops_per_step": 1e9, "attention_convention": "full",
            "tokens_per_s": 1000.0, "tokens_per_s_ci_low": 980.0, "tokens_per_s_ci_high": 1020.0,
            "precision": "fp32", "variant_precision": "fp32", "mfu": 0.5, "mfu_ci_low": 0.49,
            "mfu_ci_high": 0.51, "mfu_vs_variant_peak": 0.5, "energy_j": 10.0,
            "energy_estimated": True, "energy_method": "estimated", "energy_scope": "cpu_estimate",
            "energy_low_j": 5.0, "energy_high_j": 20.0, "eta_flops_per_j": 1e9,
            "eta_low_flops_per_j": 5e8, "eta_high_flops_per_j": 2e9, "flags": []}
    return base | extra


def _bench(summary):
    run = {"id": "r1", "status": "ok", "preset": "tiny", "scenario": "train", "variant": "fp32",
           "config": {"device": {"name": "CPU", "type": "cpu", "profile": "p"},
                      "batch_size": 4, "seq_len": 64}, "summary": summary}
    return dict(bench_lines(run))


def test_bench_view_shows_intervals_bands_and_notes():
    lines = _bench(_summary(peak_note="the measured fp32 matmul ceiling exceeds the peak",
                            noise_note="the 95% interval of tokens/s is +-9%"))
    assert lines["figures below"] == "median of 4 windows; [95% interval of the geometric mean]"
    assert lines["tokens/s"] == "1 k [980, 1.02 k]"
    assert lines["MFU"] == "50.0% [49.0%, 51.0%]"
    assert "MFU vs fp32 peak" not in lines  # the same figure as MFU
    assert "band 5 J to 20 J" in lines["energy per window"]
    assert "band 500 M to 2 G" in lines["eta (logical FLOP/J)"]
    assert "exceeds the peak" in lines["peak note"]
    keys = list(lines)
    assert keys.index("peak note") == keys.index("MFU vs measured ceiling") + 1
    assert "+-9%" in lines["noise"]
    assert "MFU vs bf16 peak" in _bench(_summary(variant_precision="bf16"))
