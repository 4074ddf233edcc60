"""Issue 25 (a new user's pass): decode latency, progress, honest defaults, node runs,
trusted calibration, forecasts from the right eta, the tracker's warm-up, what the CPU
estimate cannot tell."""

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
