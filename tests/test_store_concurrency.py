"""Several processes writing one database, and a writer killed mid-run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from profiler.store import Store, process_gone

WRITER = r"""
import sys
from profiler.store import Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    run_id = store.start_run(scenario="train", preset="tiny", variant=f"w{sys.argv[3]}",
                             device="cpu", device_type="cpu", attention_convention="full",
                             config={"writer": sys.argv[3], "i": i},
                             environment={"etameter_version": "test", "host": "h"})
    store.add_result(run_id, {"window": 0, "steps": i, "tokens_per_s": float(i)})
    store.add_power_samples(run_id, 0, "cpu", tuple((t * 0.1, 10.0 + t) for t in range(5)))
    store.finish_run(run_id, "ok")
"""

ENDLESS = r"""
import sys
from profiler.store import Store
store = Store(sys.argv[1])
run_id = store.start_run(scenario="train", preset="tiny", variant="endless", device="cpu",
                         device_type="cpu", attention_convention="full", config={},
                         environment={"etameter_version": "test"})
print(run_id, flush=True)
while True:
    store.add_power_samples(run_id, 0, "cpu", tuple((t * 0.001, 1.0) for t in range(2000)))
"""


def test_eight_processes_write_fifty_runs_each(tmp_path):
    path = str(tmp_path / "shared.db")  # not created yet: the writers race to create it
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, "50", str(w)],
                              stderr=subprocess.PIPE, text=True) for w in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store = Store(path)
    runs = store.runs()
    assert len(runs) == 400
    assert {r["status"] for r in runs} == {"ok"}
    assert len({r["id"] for r in runs}) == 400
    assert all(len(r["results"]) == 1 for r in runs)
    conn = sqlite3.connect(path)
    assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    assert conn.execute("select count(*) from power_samples").fetchone() == (2000,)
    assert conn.execute("select count(*) from environments").fetchone() == (1,)


def test_a_writer_killed_mid_run_leaves_a_valid_database(tmp_path):
    path = str(tmp_path / "killed.db")
    proc = subprocess.Popen([sys.executable, "-c", ENDLESS, path], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)  # mid-way through a stream of writes
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    conn.close()
    store = Store(path)
    run = store.get_run(run_id)
    assert run["status"] == "running"
    assert process_gone(run)
    samples = store.power_samples(run_id)
    assert len(samples) % 2000 == 0 and samples  # whole batches only: each was one transaction

    from click.testing import CliRunner

    from harness.cli import cli
    table = CliRunner().invoke(cli, ["report", "--db", path]).stdout
    assert "died without recording an ending" in table
