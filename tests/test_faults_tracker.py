"""Faults against the tracker (issue 22, item 3): it checks what it is given. Every bad
argument is a typed etameter error naming it; a closed tracker refuses more steps and a second
close; a window never divides by zero tokens and a run is never left ``running``."""

import math

import pytest
import torch

from profiler.errors import ConfigError, EtameterError, UsageError
from profiler.store import Store
from profiler.tracker import Tracker


def tracker(**kwargs):
    base = dict(flops_per_token=1e6, meter=False, printer=None, device="cpu", window_steps=2,
                warmup_steps=0)
    return Tracker(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs, message", [
    ({"flops_per_token": math.nan}, "flops_per_token must be positive and finite, got nan"),
    ({"flops_per_token": math.inf}, "flops_per_token must be positive and finite, got inf"),
    ({"flops_per_token": "1e9"}, "flops_per_token must be a number, got str"),
    ({"flops_per_token": True}, "flops_per_token must be a number"),
    ({"window_steps": math.nan}, "window_steps must be positive and finite, got nan"),
    ({"window_steps": 2.5}, "window_steps must be a whole number"),
    ({"window_steps": "20"}, "window_steps must be a whole number, got str"),
    ({"flops_per_token": None, "model_config": {"hidden_size": 64}, "seq_len": 64},
     "model_config must be a profiler.flops.ModelShape"),
    ({"flops_per_token": None, "model_config": "x.json", "seq_len": -1}, "seq_len must be"),
    ({"device": "tpu"}, "device 'tpu' is not a device"),
    ({"device": "meta"}, "the tracker meters a CPU or a CUDA"),
    ({"device": 3.5}, "is not a device"),
])
def test_a_bad_argument_is_a_typed_error_naming_it(kwargs, message):
    with pytest.raises(ConfigError) as e:
        tracker(**kwargs)
    assert message in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_an_absent_gpu_is_named():
    with pytest.raises(ConfigError, match="no CUDA device is available here"):
        tracker(device="cuda:1")


@pytest.mark.parametrize("tokens, message", [
    (-5, "tokens must be positive and finite, got -5"),
    (0, "tokens must be positive and finite, got 0"),
    (math.nan, "got nan"),
    (math.inf, "got inf"),
    ("64", "tokens must be a number, got str '64'"),
    (None, "tokens must be a number, got NoneType"),
    ([64], "tokens must be a number, got list"),
    (1e308, "tokens must be at most 1e+30"),
])
def test_bad_tokens_are_refused_and_count_nothing(db_path, tokens, message):
    t = tracker(store=db_path)
    t.step(tokens=64)
    with pytest.raises(ConfigError) as e:
        t.step(tokens=tokens)
    assert message in str(e.value)
    t.step(tokens=64)  # the refused step counted nothing: this one closes the window
    summary = t.close()
    assert summary["windows"] == 1 and summary["tokens"] == 128
    run = Store(db_path).get_run(t.run_id)
    assert run["status"] == "ok"


def test_a_tensor_of_tokens_is_read_as_its_number():
    t = tracker()
    t.step(tokens=torch.tensor(32))
    assert t.step(tokens=torch.tensor(32))["tokens"] == 64
    t.close()


def test_close_twice_and_step_after_close_are_usage_errors(db_path):
    t = tracker(store=db_path)
    t.step(tokens=8)
    t.close()
    with pytest.raises(UsageError, match=r"close\(\) called twice"):
        t.close()
    with pytest.raises(UsageError, match=r"step\(\) after close\(\)"):
        t.step(tokens=8)
    assert isinstance(UsageError("x"), EtameterError) and t.closed
    runs = Store(db_path).runs()
    assert [r["status"] for r in runs] == ["ok"]
    assert len(Store(db_path).results(t.run_id)) == 1  # the stray step stored nothing


def test_a_run_with_no_tokens_is_closed_not_left_running(db_path):
    t = tracker(store=db_path)
    summary = t.close()
    assert summary["windows"] == 0 and summary["tokens_per_s"] is None
    assert Store(db_path).get_run(t.run_id)["status"] == "ok"


def test_a_summary_that_fails_still_closes_the_run(db_path, monkeypatch):
    t = tracker(store=db_path)
    t.step(tokens=4)
    monkeypatch.setattr(t, "summary", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        t.close()
    run = Store(db_path).get_run(t.run_id)
    assert run["status"] == "failed" and "the summary failed" in run["error"]


def test_a_with_block_closed_inside_does_not_close_twice(db_path):
    with tracker(store=db_path) as t:
        t.step(tokens=4)
        t.close()
    assert Store(db_path).get_run(t.run_id)["status"] == "ok"


def test_a_failure_in_the_loop_records_the_run_failed(db_path):
    with pytest.raises(ConfigError):
        with tracker(store=db_path) as t:
            t.step(tokens=-1)
    run = Store(db_path).get_run(t.run_id)
    assert run["status"] == "failed" and "tokens must be positive" in run["error"]
