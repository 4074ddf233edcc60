"""Signals and lifecycles (issue 22, item 5): SIGTERM and SIGHUP end a run as ``interrupted``
like Ctrl-C; a sweep's parent that is stopped (or killed) takes its worker with it, and the
run is recorded; ``delete`` refuses a running run whose process is alive on this host.

The bench cases run a real ``etameter bench`` of the tiny preset in a subprocess, poll the
database (and the process tree) until the run is under way, send the signal, and wait with
bounded timeouts; they are marked slow (each costs a Python start with torch)."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.lifecycle import (Terminated, exit_code, interrupt_reason, run_process_alive,
                                stop_signals_interrupt)
from profiler.store import Store, utc_now

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120  # a loaded 2-core machine takes a while to import torch
END_TIMEOUT_S = 60


# -- in this process ------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_raise_terminated_and_handlers_are_restored(signum):
    before = signal.getsignal(signum)
    with pytest.raises(Terminated) as e:
        with stop_signals_interrupt():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler raises at once
    assert isinstance(e.value, KeyboardInterrupt) and e.value.signum == signum
    assert exit_code(e.value) == 128 + signum
    assert signal.Signals(signum).name in interrupt_reason(e.value)
    assert signal.getsignal(signum) is before


def test_ctrl_c_keeps_its_reason_and_code():
    assert interrupt_reason(KeyboardInterrupt()) == "interrupted by the user (Ctrl-C)"
    assert exit_code(KeyboardInterrupt()) == 130


def test_a_second_signal_does_not_interrupt_the_recording():
    with pytest.raises(Terminated):
        with stop_signals_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Terminated:
                os.kill(os.getpid(), signal.SIGTERM)  # while "recording": ignored
                time.sleep(0.05)
                raise


def test_a_child_dies_with_its_parent(tmp_path):
    """die_with_parent: a parent killed with SIGKILL (no chance to clean up) still ends its
    child, which sees the parent's death as such."""
    child = tmp_path / "child.py"
    out = tmp_path / "child.out"
    child.write_text(textwrap.dedent(f"""
        import os, time
        from profiler.lifecycle import die_with_parent, stop_signals_interrupt
        parent = os.getppid()
        with stop_signals_interrupt(parent_pid=parent):
            die_with_parent(parent)
            open({str(out)!r} + ".ready", "w").close()
            try:
                time.sleep(60)
            except KeyboardInterrupt as e:
                open({str(out)!r}, "w").write(f"{{e.signal_name}} {{e.parent_gone}}")
    """))
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; "
         f"subprocess.Popen([sys.executable, {str(child)!r}]); time.sleep(60)"],
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert _wait(lambda: Path(str(out) + ".ready").exists(), 30), "the child did not start"
        parent.kill()
        assert _wait(out.exists, 15), "the child outlived its parent"
        assert out.read_text() == "SIGTERM True"
    finally:
        parent.kill()
        parent.wait()


# -- delete and live runs -------------------------------------------------------------------------

def _running(store, *, pid, host=None, started_at=None):
    run_id = store.start_run(scenario="train", preset="tiny", variant="fp32", device="cpu",
                             device_type="cpu", attention_convention="full", config={},
                             environment={"host": "h"})
    store.db["runs"].update(run_id, {"pid": pid, "host": host or socket.gethostname(),
                                     **({"started_at": started_at} if started_at else {})})
    return run_id


def test_delete_refuses_a_running_run_whose_process_is_alive(db_path):
    store = Store(db_path)
    live = _running(store, pid=os.getpid())
    result = CliRunner().invoke(cli, ["delete", "--status", "running", "--db", db_path])
    assert result.exit_code == 1 and "still running on this host" in result.output
    assert live[:8] in result.output and "Traceback" not in result.output
    by_id = CliRunner().invoke(cli, ["delete", live[:8], "--db", db_path])
    assert by_id.exit_code == 1 and "still running" in by_id.output
    assert len(Store(db_path, write=False).runs()) == 1  # nothing was deleted


def test_delete_takes_running_runs_whose_process_is_gone(db_path):
    store = Store(db_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _running(store, pid=gone.pid)
    _running(store, pid=os.getpid(), host="another-host")  # not ours to judge: deletable
    # our pid, but the run started before this process did: the pid was reused
    _running(store, pid=os.getpid(), started_at="2000-01-01T00:00:00.000+00:00")
    result = CliRunner().invoke(cli, ["delete", "--status", "running", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "deleted 3 run(s)" in result.output


def test_run_process_alive_needs_pid_host_and_age():
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utc_now()}
    assert run_process_alive(me)
    assert not run_process_alive({**me, "pid": None})
    assert not run_process_alive({**me, "host": "elsewhere"})
    assert not run_process_alive({**me, "started_at": "1999-01-01T00:00:00+00:00"})
    assert not run_process_alive({**me, "pid": 2 ** 22 + 12345})


# -- a real bench, stopped ------------------------------------------------------------------------

def _wait(condition, timeout_s: float, period_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()


def _runs(db):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("select status, error from runs order by started_at").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _bench(db, variants):
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--variants", variants,
         "--steps", "1000000", "--trials", "1", "--warmup", "0", "--no-quality", "--device",
         "cpu", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def _worker(proc):
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return None
    return next((k for k in kids if "harness.worker" in " ".join(k.cmdline())), None)


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


@pytest.mark.slow
def test_sighup_ends_a_bench_as_interrupted(tmp_path):
    db = tmp_path / "b.db"
    proc = _bench(db, "fp32")
    try:
        assert _wait(lambda: _runs(db)[:1] == [("running", None)], START_TIMEOUT_S)
        time.sleep(1.0)  # into the measurement
        proc.send_signal(signal.SIGHUP)
        out = proc.communicate(timeout=END_TIMEOUT_S)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGHUP, out
    assert "interrupted by SIGHUP" in out and "Traceback" not in out
    assert _runs(db) == [("interrupted", "interrupted by SIGHUP (the process was asked to stop)")]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_sweep_takes_its_worker_with_it(tmp_path, how):
    db = tmp_path / "s.db"
    proc = _bench(db, "fp32,bf16")
    try:
        assert _wait(lambda: _runs(db)[:1] == [("running", None)] and _worker(proc),
                     START_TIMEOUT_S), "the sweep's worker did not start"
        worker = _worker(proc)
        time.sleep(1.0)
        proc.send_signal(getattr(signal, how))
        proc.communicate(timeout=END_TIMEOUT_S)
        assert _wait(lambda: _gone(worker), END_TIMEOUT_S), "the worker outlived its parent"
        assert _wait(lambda: _runs(db)[0][0] == "interrupted", 10), _runs(db)
    finally:
        proc.kill()
        with_worker = _worker(proc)
        if with_worker:
            with_worker.kill()
    runs = _runs(db)
    assert len(runs) == 1, runs  # the second variant never started
    assert "SIGTERM" in runs[0][1]
    if how == "SIGKILL":
        assert "the process that started this worker ended" in runs[0][1]
    else:
        assert proc.returncode == 128 + signal.SIGTERM


def test_a_tracker_inside_stop_signals_records_the_signal(db_path):
    from profiler.tracker import Tracker

    store = Store(db_path)
    with pytest.raises(Terminated):
        with stop_signals_interrupt():
            with Tracker(model_config=None, flops_per_token=1e6, store=store, device="cpu",
                         printer=None) as tracker:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
    run = store.get_run(tracker.run_id)
    assert run["status"] == "interrupted" and "SIGTERM" in run["error"]
