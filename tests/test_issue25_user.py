"""Issue 25 (a new user's pass): decode latency, progress, honest defaults, node runs,
trusted calibration, forecasts from the right eta, the tracker's warm-up, what the CPU
estimate cannot tell."""

import pytest

from harness.runner import BenchConfig, run_bench
from profiler.measurement import Energy, Window, percentile, window_row
from profiler.store import Store
from reports.bench_view import bench_lines


def _window(**kw) -> Window:
    base = dict(window=0, steps=2, duration_s=1.0, tokens=32, logical_flops=1e9,
                logical_flops_per_token=1e9 / 32, attention_convention="full", precision="fp32",
                peak_flops_per_s=None, peak_source="no peak", energy=Energy.missing("none"),
                device_key="cpu")
    return Window(**{**base, **kw})


def test_percentile_interpolates_like_numpy():
    values = [float(x) for x in range(1, 11)]
    assert percentile(values, 50) == 5.5
    assert abs(percentile(values, 90) - 9.1) < 1e-12
    assert percentile([3.0], 99) == 3.0


def test_decode_latency_row_and_its_reason_elsewhere():
    row = window_row(_window(first_token_s=0.2, token_latencies_s=(0.01, 0.03, 0.02, 0.04)))
    assert row["first_token_s"] == 0.2
    assert row["token_latency_p50_s"] == 0.025
    assert row["token_latency_p50_s"] <= row["token_latency_p90_s"] <= row["token_latency_p99_s"]
    assert row["latency_reason"] is None
    train = window_row(_window())
    assert train["token_latency_p50_s"] is None and "decode" in train["latency_reason"]


def test_decode_runs_store_ttft_and_percentiles_and_show_them(db_path):
    store = Store(db_path)
    run = run_bench(BenchConfig(preset="tiny", scenario="decode", steps=2, trials=2,
                                warmup_steps=1, new_tokens=4, device="cpu", quality=False), store)
    assert run["status"] == "ok", run.get("error")
    for r in run["results"]:
        assert 0 < r["first_token_s"] < r["duration_s"] * 10
        assert 0 < r["token_latency_p50_s"] <= r["token_latency_p90_s"] <= r["token_latency_p99_s"]
        # 2 steps x 4 new tokens, each timed: the latencies fit inside the window
        assert r["token_latency_p50_s"] * 8 <= r["duration_s"] * 1.5
    stored = store.get_run(run["id"])
    assert stored["summary"]["token_latency_p99_s"] is not None
    view = dict(bench_lines(stored))
    assert "time to first token" in view and "per-token latency p99" in view
    train = run_bench(BenchConfig(preset="tiny", steps=1, trials=1, warmup_steps=0,
                                  device="cpu", quality=False), store)
    assert "time to first token" not in dict(bench_lines(store.get_run(train["id"])))
    from reports.table import run_rows

    _, notes = run_rows([stored])
    assert any("decode latency: first token" in n for n in notes)


# -- 3: progress --------------------------------------------------------------------------------

def test_progress_lines_round_trip_and_are_throttled():
    import io

    from profiler.progress import StreamProgress, decode, encode

    assert decode("[rank0]: " + encode("timed", 3, 9)) == ("timed", 3, 9)
    assert decode("an ordinary log line") is None and decode("etameter-progress {bad") is None
    out = io.StringIO()
    report = StreamProgress(out, interval_s=3600)
    for i in range(101):
        report("timed", i, 100)
    events = [decode(line) for line in out.getvalue().splitlines()]
    assert events == [("timed", 0, 100), ("timed", 100, 100)]  # first and last always


def test_a_workers_progress_reaches_the_observer_and_the_rest_the_log():
    import io

    from harness.execute import Observer
    from harness.runner import _relay
    from profiler.progress import encode

    seen = []
    observer = Observer()
    observer.progress = lambda *e: seen.append(e)
    log = io.StringIO()
    _relay(iter(["warning: x\n", encode("warmup", 1, 2) + "\n", encode("timed", 5, 10) + "\n"]),
           log, observer)
    assert seen == [("warmup", 1, 2), ("timed", 5, 10)] and log.getvalue() == "warning: x\n"


def test_display_shows_phases_with_time_left_and_is_quiet_when_disabled():
    import io

    from rich.console import Console

    from profiler.progress import ProgressDisplay

    buf = io.StringIO()
    with ProgressDisplay(Console(file=buf, width=120)) as display:
        display("first step (compile)", 0, 0)
        for i in range(4):
            display("timed", i, 3)
    assert "timed" in buf.getvalue() and "left" in buf.getvalue()
    quiet = io.StringIO()
    with ProgressDisplay(Console(file=quiet), enabled=False) as display:
        display("timed", 1, 3)
        display.note("hello")
    assert quiet.getvalue() == ""


def test_bench_reports_the_phases_inside_a_variant(db_path):
    from harness.execute import Observer

    seen = []
    observer = Observer()
    observer.progress = lambda phase, done, total: seen.append((phase, done, total))
    run_bench(BenchConfig(preset="tiny", steps=2, trials=2, warmup_steps=1, device="cpu",
                          quality=False), Store(db_path), observer)
    phases = [p for p, _, _ in seen]
    assert phases.index("first step (compile)") < phases.index("warmup") < phases.index("timed")
    assert ("timed", 4, 4) in seen


@pytest.fixture
def quick_fit(monkeypatch):
    """A fitter with few steps and starting points: progress, not accuracy, is tested."""
    from reports.scaling import fit

    monkeypatch.setattr(fit, "ADAM_STEPS", 20)
    monkeypatch.setattr(fit, "REFINE_TOP", 1)
    monkeypatch.setattr(fit, "COMPUTE_GRID", dict(e=(0.5,), alpha=(0.3,), a=(3.0, 6.0)))


def test_fit_and_calibration_report_progress(quick_fit):
    import torch

    from hardware_profiles.calibrate import CalibrationConfig, calibrate
    from reports.scaling.fit import fit_compute

    seen = []
    points = [(c, 1.7 + 400 * c ** -0.3) for c in (1e18, 1e19, 1e20, 1e21, 1e22)]
    fit_compute(points, bootstrap=2, progress=lambda *e: seen.append(e))
    assert ("fit: bootstrap refits", 2, 2) in seen
    assert any(p.startswith("fit: ") and d == t for p, d, t in seen if "starting" in p)
    seen.clear()
    calibrate(torch.device("cpu"), lambda: None,
              CalibrationConfig(precisions=("fp32",), repeats=2, n_max=64, copy_bytes=2**20),
              progress=lambda *e: seen.append(e))
    assert ("matmul fp32", 0, 2) in seen and any(p == "copy bandwidth" and d >= 2 for p, d, _ in seen)


def test_json_commands_are_quiet_unless_progress_is_asked(tmp_path, quick_fit):
    from click.testing import CliRunner

    from harness.cli import cli

    csv = tmp_path / "points.csv"
    csv.write_text("C,L\n" + "".join(f"{c},{1.7 + 400 * c ** -0.3}\n"
                                     for c in (1e18, 1e19, 1e20, 1e21, 1e22)))
    args = ["forecast", "--fit", str(csv), "--bootstrap", "2", "--target-loss", "2.5",
            "--eta", "1e11", "--json"]
    quiet = CliRunner().invoke(cli, args)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    loud = CliRunner().invoke(cli, args + ["--progress"])
    assert "bootstrap" in loud.stderr


# -- 6: calibration that can be trusted --------------------------------------------------------

def test_an_unsteady_ceiling_is_retried_then_flagged():
    from hardware_profiles import calibrate as cal

    steady_later = iter([10.0, 30.0, 20.0, 20.0, 21.0, 20.5])
    r = cal._steady(lambda: next(steady_later), 3, "x", lambda *e: None)
    assert not r["noisy"] and r["value"] == 20.5 and len(r["round_spreads"]) == 2
    always = iter([10.0, 30.0, 20.0] * cal.MAX_ROUNDS)
    r = cal._steady(lambda: next(always), 3, "x", lambda *e: None)
    assert r["noisy"] and "never used as the MFU ceiling" in r["noise_reason"]
    assert len(r["round_spreads"]) == cal.MAX_ROUNDS


def test_the_store_uses_the_best_steady_ceiling_never_a_noisy_one(db_path):
    store = Store(db_path)
    common = dict(device_key="cpu:x", device_name="x", device_type="cpu", profile_id=None,
                  environment={})

    def add(value, noisy):
        return store.add_calibration(result={"kind": "matmul", "precision": "fp32",
                                             "value": value, "unit": "flop_per_s", "size": 64,
                                             "repeats": 3, "spread": 0.5 if noisy else 0.01,
                                             "noisy": noisy}, **common)

    assert store.best_ceiling("cpu:x", "matmul", "fp32") is None
    good = add(70e9, False)
    add(75e9, True)   # higher but noisy: not used
    add(27.8e9, True)  # the loaded machine's low figure: not used
    add(67e9, False)
    assert store.best_ceiling("cpu:x", "matmul", "fp32")["id"] == good


def test_a_cpu_peak_is_called_assumed_not_vendor():
    from hardware_profiles.calibrate import compare_with_datasheet
    from hardware_profiles.device import resolve_device
    from reports.text import calibration_lines

    ctx = resolve_device("cpu")
    rows = compare_with_datasheet(ctx, [{"kind": "matmul", "precision": "fp32", "value": 5e10,
                                         "size": 64, "spread": 0.6, "noisy": True,
                                         "noise_reason": "the trials spread 60%",
                                         "ceiling_in_use": None}])
    assert rows[0]["peak_kind"] == "assumed"
    text = "\n".join(calibration_lines({"device": ctx.describe(), "db": "x.db", "ceilings": rows,
                                        "skipped": {}}))
    assert "vendor" not in text and "assumed peak" in text and "NOISY" in text


# -- 5: node runs are not single runs -----------------------------------------------------------

def test_node_runs_show_their_ranks_and_are_never_compared_with_one_process(db_path):
    from reports.compare import compare_groups, group_title, groups
    from reports.table import run_rows
    from tests.test_reports import add_run

    store = Store(db_path)
    one = add_run(store, "fp32", 8, 100.0, scenario="train")
    node = add_run(store, "fp32", 8, 200.0, scenario="train")
    store.update_run_config(node, {"world_size": 2, "device": {
        "key": "cpu:h:AMD EPYC", "name": "AMD EPYC", "type": "cpu", "profile": None}})
    summary = store.get_run(node)["summary"]
    store.set_run_summary(node, {**summary, "devices": 1}, True)
    runs = [store.get_run(one), store.get_run(node)]
    keys = list(groups(runs, across_sweeps=True))
    assert len(keys) == 2  # one process and two ranks: two groups, no "2.00x faster"
    titles = [group_title(k) for k in keys]
    assert any("2 ranks" in t for t in titles) and not all("ranks" in t for t in titles)
    rows, _ = run_rows(runs)
    assert "[2 ranks on 1 device (shared)]" in rows[1][3] and "ranks" not in rows[0][3]
    view = dict(bench_lines(runs[1] | {"status": "skipped"}))  # the identity lines only
    assert "2 ranks on 1 device" in view["workload"]
    import pytest as _pytest

    from profiler.errors import ConfigError

    with _pytest.raises(ConfigError, match="no group has a run of baseline"):
        compare_groups([runs[0] | {"variant": "bf16"}, runs[1]], "fp32", across_sweeps=True)


def test_a_node_peak_on_one_shared_device_is_worded_for_one():
    from profiler.distributed import aggregate

    w = _window(peak_flops_per_s=1e12, peak_source="profile x")
    node = window_row(aggregate([w.as_rank(0), w.as_rank(1)]))
    assert "1 devices" not in node["peak_source"]
    assert "one device all 2 ranks share" in node["peak_source"]


# -- 4: honest defaults -------------------------------------------------------------------------

def _config_json(tmp_path, **extra):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 4,
                                "num_attention_heads": 4, "num_key_value_heads": 2,
                                "intermediate_size": 128, "vocab_size": 256,
                                "max_position_embeddings": 128, **extra}))
    return path


def test_a_model_file_without_sizes_says_the_defaults_are_etameters(tmp_path):
    from hardware_profiles.device import resolve_device
    from harness.plan import make_plan

    path = _config_json(tmp_path)
    plan = make_plan(BenchConfig(model_file=str(path), device="cpu"), resolve_device("cpu"))
    assert "preset's" not in plan.seq_len_reason
    assert "gives no seq_len" in plan.seq_len_reason and "max_seq_len 128" in plan.seq_len_reason
    assert "gives no batch_size: etameter's default batch 1" in plan.batch_reason
    given = make_plan(BenchConfig(model_file=str(path), device="cpu", batch_size=2, seq_len=32),
                      resolve_device("cpu"))
    assert given.batch_reason == "chosen with --batch" and given.seq_len_reason == "chosen with --seq"
    preset = make_plan(BenchConfig(preset="tiny", device="cpu"), resolve_device("cpu"))
    assert preset.seq_len_reason == "the tiny preset's seq_len 64 (harness/data/presets.toml [tiny])"


def test_a_slice_states_the_whole_models_flops_in_the_view_and_json(db_path):
    from reports.documents import bench_document

    run = run_bench(BenchConfig(preset="tiny", layers=1, steps=1, trials=1, warmup_steps=0,
                                device="cpu", quality=False), Store(db_path))
    whole = bench_document(run)["whole_model"]
    assert whole["n_layers"] == 2 and whole["slice_layers"] == 1
    assert whole["logical_flops_per_step"] > run["summary"]["logical_flops_per_step"]
    view = dict(bench_lines(run))
    assert view["whole model"].startswith("2 layers (this run: 1)")
    assert "sizes" in view and "batch 4:" in view["sizes"]


def test_a_memory_refusal_suggests_layers_and_seq(monkeypatch):
    from hardware_profiles.device import resolve_device
    from harness.plan import make_plan
    from profiler.errors import ConfigError

    monkeypatch.setattr("harness.memory.available_bytes", lambda device: (256 * 2**20, "test"))
    with pytest.raises(ConfigError) as e:
        make_plan(BenchConfig(preset="cpu-small", scenario="train"), resolve_device("cpu"))
    assert "--layers" in str(e.value) or "--seq" in str(e.value)


# -- 7: forecasts from the right kind of eta ----------------------------------------------------

def test_a_training_target_needs_a_train_runs_eta(db_path):
    import json

    from click.testing import CliRunner

    from harness.cli import cli
    from tests.test_reports import add_run

    store = Store(db_path)
    prefill = add_run(store, "int8-dynamic", 4, 5000.0)  # prefill, the fixture's default
    base = ["forecast", "--target-loss", "1.9", "--allow-estimated", "--db", db_path, "--json"]
    refused = CliRunner().invoke(cli, base + ["--run", prefill[:8]])
    assert refused.exit_code == 1 and "prefill run" in refused.output
    assert "--allow-non-train" in refused.output
    allowed = CliRunner().invoke(cli, base + ["--run", prefill[:8], "--allow-non-train"])
    assert "stands in for training" in json.loads(allowed.stdout)["eta_note"]
    train = add_run(store, "fp32", 4, 100.0, scenario="train")
    picked = json.loads(CliRunner().invoke(cli, base + ["--device", "EPYC"]).stdout)
    assert train[:8] in picked["eta_source"] and picked["eta_note"] is None  # not the faster prefill


def test_the_frontier_rate_is_the_runs_own_class_and_precision():
    from hardware_profiles.profiles import load_profiles
    from reports.scaling import frontier
    from reports.scaling.forecast import EtaSource, _frontier_for
    from profiler.errors import ConfigError

    cpu = EtaSource(1e9, "run abc (fp32, train on tiny, a CPU)", device_type="cpu",
                    precision="fp32")
    with pytest.raises(ConfigError, match="GPU doubling rate"):
        _frontier_for(cpu, None, frontier, load_profiles())
    gpu = EtaSource(1e11, "run def", device_type="cuda", precision="fp16")
    rate = _frontier_for(gpu, None, frontier, load_profiles())
    assert "fp16" in rate["source"] and "the run's compute precision" in rate["source"]
    assert rate["r"] == frontier.frontier_rate(load_profiles(), "fp16")["r"]
    chosen = _frontier_for(gpu, "bf16", frontier, load_profiles())
    assert "(the run computed in fp16)" in chosen["source"]


# -- 11: what an estimate cannot tell -----------------------------------------------------------

def _ledger_run(store, variant, mfus, powers, method):
    from profiler.measurement import summarise

    run_id = store.start_run(scenario="train", preset="tiny", variant=variant, device="cpu",
                             device_type="cpu", attention_convention="full", environment={},
                             config={"model": {"n_layers": 2}, "batch_size": 4, "seq_len": 64})
    rows = []
    for i, (mfu, power) in enumerate(zip(mfus, powers)):
        flops = mfu * 1e12 * 2.0
        row = window_row(_window(window=i, duration_s=2.0, logical_flops=flops,
                                 logical_flops_per_token=1e6, tokens=flops / 1e6,
                                 peak_flops_per_s=1e12, peak_source="assumed",
                                 energy=Energy(power * 2.0, method, "cpu", True)))
        store.add_result(run_id, row)
        rows.append(row)
    store.set_run_summary(run_id, summarise(rows), None)
    store.finish_run(run_id, "ok")
    return store.find_run(run_id)


def test_the_ledger_says_a_modelled_power_term_is_not_measured():
    from reports.scaling.efficiency_text import ledger_lines
    from reports.scaling.ledger import ledger

    store = Store(memory=True)
    a = _ledger_run(store, "fp32", [0.2, 0.21], [7.5, 7.5], "estimated")
    b = _ledger_run(store, "bf16", [0.4, 0.41], [7.5, 7.5], "estimated")
    doc = ledger(a, b)
    power = next(t for t in doc["terms"] if t["key"] == "power")
    assert power["measured"] is False and "not measured (modelled power)" in power["note"]
    line = next(x for x in ledger_lines(doc) if "power drawn" in x)
    assert "not measured (modelled power)" in line and "0.000" not in line
    measured = ledger(_ledger_run(store, "fp32", [0.2, 0.21], [50, 51], "rapl"),
                      _ledger_run(store, "bf16", [0.4, 0.41], [50, 52], "rapl"))
    assert next(t for t in measured["terms"] if t["key"] == "power")["measured"] is True


def test_the_estimate_charges_only_the_benchmark_processs_cpu_time():
    from collections import namedtuple

    from profiler.meters.estimate import CpuEstimateMeter, _own_cpu_times

    Machine = namedtuple("Machine", "user nice system idle iowait")
    Proc = namedtuple("Proc", "user system children_user children_system")
    # The machine is fully busy (another tenant), this process used a quarter of all CPU time.
    machine = iter([Machine(0, 0, 0, 0, 0), Machine(80, 0, 20, 0, 0)])
    proc = iter([Proc(0, 0, 0, 0), Proc(20, 4, 1, 0)])
    meter = CpuEstimateMeter(100.0, "test", cpu_times=lambda: next(machine),
                             process_times=lambda: next(proc))
    meter.start()
    device = meter.stop(2.0).devices[0]
    assert device.detail["busy_fraction"] == 0.25 and device.detail["machine_busy_fraction"] == 1.0
    assert device.energy_j == 100.0 * 0.25 * 2.0 and device.detail["utilisation"] == "process"
    assert meter.describe()["utilisation"] == "process"
    reader, reason = _own_cpu_times()
    assert reader is not None and reason is None


def test_under_torchrun_the_estimate_uses_the_machines_utilisation(monkeypatch):
    from profiler.meters.estimate import _own_cpu_times

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    reader, reason = _own_cpu_times()
    assert reader is None and "ranks share this CPU" in reason


# -- 8: the tracker's first window --------------------------------------------------------------

def test_the_trackers_warm_up_steps_are_not_timed(db_path, monkeypatch):
    import time as _time

    from profiler import tracker as tracker_module
    from profiler.tracker import Tracker

    assert tracker_module.WARMUP_STEPS >= 1  # on by default
    slow = iter([0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the loop's first step is slow
    with Tracker(flops_per_token=1e6, window_steps=3, store=db_path, meter=False,
                 printer=None, warmup_steps=1) as tracker:
        for _ in range(7):
            _time.sleep(next(slow))
            tracker.step(tokens=100)
    windows = tracker.windows
    assert [w["steps"] for w in windows] == [3, 3]  # 7 steps: 1 warm-up, then two windows
    assert all(w["duration_s"] < 0.25 for w in windows)  # the slow step is in neither
    run = Store(db_path).get_run(tracker.run_id)
    assert run["config"]["warmup_steps"] == 1 and run["summary"]["warmup_steps"] == 1
    with pytest.raises(Exception, match="warmup_steps"):
        Tracker(flops_per_token=1.0, meter=False, printer=None, warmup_steps=-1)


def test_a_noisy_tracked_run_gets_the_trackers_advice_not_bench_flags():
    from profiler.measurement import summarise
    from profiler.tracker import NOISY_ADVICE

    rows = [window_row(_window(window=i, duration_s=d)) for i, d in enumerate((1.0, 2.0, 0.5))]
    tracked = summarise(rows, NOISY_ADVICE)["noise_note"]
    assert "window_steps=" in tracked and "--trials" not in tracked
    assert "--trials" in summarise(rows)["noise_note"]  # bench's advice by default


def test_the_flops_command_gives_the_reasons_for_its_sizes(tmp_path):
    import json

    from click.testing import CliRunner

    from harness.cli import cli

    path = _config_json(tmp_path)
    out = CliRunner().invoke(cli, ["flops", "--model", str(path), "--json"])
    doc = json.loads(out.stdout)
    assert "gives no batch_size" in doc["batch_reason"] and "gives no seq_len" in doc["seq_len_reason"]
    text = CliRunner().invoke(cli, ["flops", "--model", str(path), "--batch", "2"]).stdout
    assert "batch: chosen with --batch" in text


def test_devices_marks_a_noisy_ceiling(db_path):
    from hardware_profiles.device import resolve_device
    from hardware_profiles.report import device_document
    from reports.text import devices_lines

    ctx = resolve_device("cpu")
    store = Store(db_path)
    store.add_calibration(device_key=ctx.key, device_name=ctx.name, device_type="cpu",
                          profile_id=None, environment={},
                          result={"kind": "matmul", "precision": "fp32", "value": 2e10,
                                  "unit": "flop_per_s", "size": 64, "repeats": 3,
                                  "spread": 0.6, "noisy": True})
    doc = device_document(ctx, store)
    assert doc["ceilings"][0]["noisy"] is True
    assert any("NOISY: not used for MFU" in line for line in devices_lines([doc]))
