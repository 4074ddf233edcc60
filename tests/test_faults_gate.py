"""Faults against the store's one gate (issue 22, item 1): no source stores a figure that
cannot be true. Imports and merges are refused with the field named and nothing written;
live windows and summaries store the impossible figure as null with the reason and a flag."""

import csv
import json

import pytest

from profiler.errors import StoreError
from profiler.measurement import Energy, Window, window_row
from profiler.recorder import WindowRecorder
from profiler.store import Store
from profiler.store.gate import admit_row, admit_summary
from profiler.store.transfer import export_runs, import_file, merge


def window(i=0, *, peak=1e12, ceiling=None, energy_j=50.0, duration_s=1.0, flags=()):
    return Window(window=i, steps=4, duration_s=duration_s, tokens=400.0, logical_flops=4e11,
                  logical_flops_per_token=1e9, attention_convention="full", precision="fp32",
                  peak_flops_per_s=peak, peak_source="test peak",
                  energy=Energy(energy_j, "rapl", "cpu_package", False), device_key="cpu:test",
                  ceiling_flops_per_s=ceiling, ceiling_reason="no ceiling", flags=flags)


def real_run(store, windows=2, **kw):
    """A run recorded as bench and the tracker record one: windows through the recorder."""
    run_id = store.start_run(scenario="train", preset="tiny", variant="fp32", device="cpu",
                             device_type="cpu", attention_convention="full",
                             config={"batch_size": 2, "seq_len": 64}, environment={"h": 1})
    rec = WindowRecorder(store, run_id)
    for i in range(windows):
        rec.record(window(i, **kw))
    store.set_run_summary(run_id, rec.summary(), True)
    store.finish_run(run_id, "ok")
    return run_id


@pytest.fixture
def export(tmp_path):
    source = Store(str(tmp_path / "src.db"))
    real_run(source)
    source.add_calibration(device_key="cpu:test", device_name="cpu", device_type="cpu",
                           profile_id=None, environment={},
                           result={"kind": "matmul", "precision": "fp32", "value": 2e11,
                                   "unit": "flop_per_s", "size": 512, "repeats": 3,
                                   "spread": 0.01})
    path = tmp_path / "e.json"
    export_runs(source, source.runs(), path)
    return path


def poisoned(path, poison):
    data = json.loads(path.read_text())
    poison(data)
    path.write_text(json.dumps(data))
    return path


def summary_of(data):
    return json.loads(data["runs"][0]["summary"])


def set_summary(data, **values):
    data["runs"][0]["summary"] = json.dumps({**summary_of(data), **values})


def set_config(data, **values):
    data["runs"][0]["config"] = json.dumps({**json.loads(data["runs"][0]["config"]), **values})


def rename_run(data, new_id):
    data["runs"][0]["id"] = new_id
    for table in ("results", "power_samples"):
        for row in data[table]:
            row["run_id"] = new_id


def duplicate_window(data):
    data["results"].append(dict(data["results"][0]))


IMPORT_CASES = [
    (lambda d: set_summary(d, mfu=57), "runs[0].summary.mfu: 57 is above 1"),
    (lambda d: set_summary(d, eta_flops_per_j=-5e9), "summary.eta_flops_per_j: -5000000000.0 is negative"),
    (lambda d: set_summary(d, tokens_per_s="fast"), "summary.tokens_per_s: 'fast' is not a number"),
    (lambda d: set_summary(d, devices=-1), "summary.devices: -1 is below 1"),
    (lambda d: set_summary(d, flags=7), "summary.flags"),
    (lambda d: set_config(d, batch_size={}), "runs[0].config.batch_size: {} is not a number"),
    (lambda d: set_config(d, seq_len=-64), "config.seq_len: -64 is negative"),
    (lambda d: d["results"][0].update(mfu=50.0), "results[0].mfu: 50.0 is above 1"),
    (lambda d: d["results"][0].update(mfu=1.3), "without the above_peak flag"),
    (lambda d: d["results"][0].update(tokens_per_s=1e308), "results[0].tokens_per_s: 1e+308 is not a finite"),
    (lambda d: d["results"][0].update(avg_power_w=248_000.0), "results[0].avg_power_w"),
    (lambda d: d["results"][0].update(energy_j=262_144.0), "results[0].energy_j"),
    (lambda d: d["results"][0].update(ceiling_flops_per_s=1e-3), "results[0].ceiling_flops_per_s"),
    (lambda d: d["results"][0].update(steps=0), "results[0].steps: 0 is below 1"),
    (lambda d: d["results"][0].update(flops_per_s=1e29), "the most 1 device(s) can reach at 1e+17"),
    (lambda d: d["results"][0].update(tokens_per_s=1e29), "results[0].tokens_per_s: 1e+29 is more"),
    (lambda d: d["results"][0].update(duration_s=1e29), "results[0].duration_s: 1e+29 is above"),
    (duplicate_window, "window 0 of run"),
    (lambda d: d["power_samples"].append({"run_id": d["runs"][0]["id"], "window": 0,
                                          "device": "cpu", "t_s": 0.0, "power_w": 1e7}),
     "power_samples[0].power_w"),
    (lambda d: d["calibrations"][0].update(value=1e-3), "calibrations[0].value: 0.001 is below"),
    (lambda d: d["calibrations"][0].update(created_at="9999-01-01T00:00:00"),
     "calibrations[0].created_at: '9999-01-01T00:00:00' is in the future"),
    (lambda d: d["calibrations"][0].update(kind="vibes"), "calibrations[0].kind"),
    (lambda d: rename_run(d, "../../etc/passwd"), "runs[0].id: '../../etc/passwd' is not an id"),
    (lambda d: d["runs"][0].update(pid=-5), "runs[0].pid: -5 is not a pid"),
    (lambda d: d["runs"][0].update(finished_at="never"), "runs[0].finished_at: 'never' is not an ISO"),
    (lambda d: d["runs"][0].update(started_at="9999-12-31T00:00:00"), "runs[0].started_at"),
    (lambda d: d["runs"][0].update(quality_ok=7), "runs[0].quality_ok"),
    (lambda d: d["environments"][0].update(id="../x"), "environments[0].id"),
    (lambda d: d["devices"][0].update(first_seen="9999-01-01"), "devices[0].first_seen"),
]


@pytest.mark.parametrize("poison, message", IMPORT_CASES)
def test_an_impossible_import_is_refused_with_the_field_named(export, db_path, poison, message):
    target = Store(db_path)
    with pytest.raises(StoreError) as e:
        import_file(target, poisoned(export, poison))
    assert message in str(e.value)
    assert target.runs() == [] and target.calibrations() == []


def test_a_clean_export_imports_and_a_flagged_ratio_above_one_stands(export, db_path):
    def flagged(d):
        d["results"][0].update(mfu=1.3, flags="above_peak")
    counts = import_file(Store(db_path), poisoned(export, flagged))
    assert counts["runs"] == 1 and counts["calibrations"] == 1


def test_an_impossible_mfu_in_csv_is_refused(export, tmp_path, db_path):
    source = Store(str(tmp_path / "src.db"))
    path = tmp_path / "e.csv"
    export_runs(source, source.runs(), path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["result__mfu"] = "50"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    target = Store(db_path)
    with pytest.raises(StoreError, match=r"results\[0\]\.mfu: 50.0 is above 1"):
        import_file(target, path)
    assert target.runs() == []


def test_merge_refuses_a_database_holding_an_impossible_figure(tmp_path):
    bad = Store(str(tmp_path / "bad.db"))
    real_run(bad)
    bad.db.execute("update results set eta_flops_per_j = -5e9")  # written behind the gate
    into = tmp_path / "into.db"
    with pytest.raises(StoreError, match="eta_flops_per_j: -5000000000.0 is negative"):
        merge([str(tmp_path / "bad.db")], str(into))
    assert Store(str(into)).runs() == []


# -- live figures: null with the reason and the flag, never a number ---------------------------

def test_a_live_mfu_far_above_the_peak_is_null_with_the_reason(db_path):
    store = Store(db_path)
    run_id = real_run(store, peak=4e11 / 50)  # a peak 50x too low: MFU 50
    for row in store.results(run_id):
        assert row["mfu"] is None and "impossible_value" in row["flags"]
        assert "an impossible mfu was not stored" in row["mfu_reason"]
    summary = store.get_run(run_id)["summary"]
    assert summary["mfu"] is None and "mfu_reason" in summary


def test_a_live_mfu_a_little_above_one_is_kept_with_its_flag():
    row = admit_row(window_row(window(peak=4e11 / 1.2)))
    assert row["mfu"] == pytest.approx(1.2) and "above_peak" in row["flags"]


def test_an_impossible_ceiling_is_refused_and_never_divides_a_run(db_path):
    store = Store(db_path)
    with pytest.raises(StoreError, match="calibration.value: 0.001 is below"):
        store.add_calibration(device_key="cpu:test", device_name="cpu", device_type="cpu",
                              profile_id=None, environment={},
                              result={"kind": "matmul", "precision": "fp32", "value": 1e-3,
                                      "unit": "flop_per_s", "size": 256, "repeats": 1,
                                      "spread": 0.0})
    assert store.calibrations() == []
    # One written behind the gate (an older etameter) is passed over when a run reads it.
    store.db["calibrations"].insert({"id": "c1", "created_at": "2026-01-01T00:00:00",
                                     "device_key": "cpu:test", "kind": "matmul",
                                     "precision": "fp32", "value": 1e-3, "unit": "flop_per_s"})
    assert store.best_ceiling("cpu:test", "matmul", "fp32") is None
    # And a window held against such a ceiling stores no 6e16.
    row = admit_row(window_row(window(ceiling=1e-3 / 1e5)))
    assert row["mfu_vs_ceiling"] is None and row["ceiling_flops_per_s"] is None
    assert "an impossible" in row["ceiling_reason"] and "impossible_value" in row["flags"]


def test_the_tracker_never_stores_mfu_vs_ceiling_from_an_impossible_ceiling(db_path):
    from profiler.tracker import Tracker

    store = Store(db_path)
    tracker = Tracker(flops_per_token=1e6, store=store, meter=False, printer=None,
                      window_steps=2, device="cpu")
    store.db["calibrations"].insert({"id": "c1", "created_at": "2026-01-01T00:00:00",
                                     "device_key": tracker.ctx.key, "kind": "matmul",
                                     "precision": tracker.precision, "value": 1e-3,
                                     "unit": "flop_per_s"})
    tracker.close()
    tracker = Tracker(flops_per_token=1e6, store=store, meter=False, printer=None,
                      window_steps=2, warmup_steps=0, device="cpu")
    for _ in range(2):
        tracker.step(tokens=64)
    tracker.close()
    row = store.results(tracker.run_id)[0]
    assert row["mfu_vs_ceiling"] is None and "run etameter calibrate" in row["ceiling_reason"]


def test_live_energy_no_device_can_draw_takes_its_figures_along():
    row = admit_row(window_row(window(energy_j=262_144.0, duration_s=1.0)))
    for key in ("energy_j", "avg_power_w", "eta_flops_per_j", "tokens_per_j"):
        assert row[key] is None, key
    assert "impossible" in row["energy_reason"] and "impossible_value" in row["flags"]


def test_a_live_summary_with_impossible_figures_is_stored_null(db_path):
    store = Store(db_path)
    run_id = real_run(store)
    store.set_run_summary(run_id, {"mfu": 57.0, "devices": -1, "tokens_per_s": "fast",
                                   "eta_flops_per_j": -5e9, "flags": []}, True)
    summary = store.get_run(run_id)["summary"]
    assert all(summary[k] is None for k in ("mfu", "devices", "tokens_per_s", "eta_flops_per_j"))
    assert "impossible_value" in summary["flags"] and set(summary["impossible"]) >= {"mfu", "devices"}


def test_a_clean_summary_and_row_pass_the_gate_unchanged():
    row = window_row(window())
    assert admit_row(row) == row
    summary = {"mfu": 0.4, "tokens_per_s": 100.0, "flags": []}
    assert admit_summary(summary) is summary


def test_a_summary_over_windows_whose_throughput_was_refused_is_still_made():
    from profiler.measurement import summarise

    rows = [admit_row(window_row(window(i))) for i in range(2)]
    rows[0]["tokens_per_s"] = None  # as the gate leaves a figure that could not be true
    summary = summarise(rows)
    assert summary["windows"] == 2 and summary["tokens_per_s"] is None


def test_a_window_is_stored_once(db_path):
    store = Store(db_path)
    run_id = real_run(store, windows=1)
    with pytest.raises(StoreError, match="window 0 of run .* is already stored"):
        store.add_result(run_id, window_row(window(0)))
    assert len(store.results(run_id)) == 1
