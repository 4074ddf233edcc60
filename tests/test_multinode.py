"""A benchmark across nodes: two "nodes" on 127.0.0.1 (two launches with different node ranks
and different fake host roots, gloo, one rank each) under torchrun's c10d rendezvous; the
scaling report over the 1- and 2-node runs; Slurm's variables filling the options."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.slurm import first_host, slurm_options
from profiler.errors import ConfigError
from profiler.store import Store
from tests.hosts import write_host

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ["--preset", "tiny", "--steps", "2", "--trials", "2", "--warmup", "0", "--no-quality",
            "--device", "cpu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(tmp_path: Path, host: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "ETAMETER_HOST_ROOT": str(write_host(tmp_path / host, "zen3",
                                                                hostname=host)),
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", *WORKLOAD, *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def two_nodes(tmp_path: Path, db0: str) -> tuple[str, str]:
    endpoint = f"127.0.0.1:{free_port()}"
    # node 1 first: c10d would make the earlier agent's rank 0; the workers put node 0's first
    nodes = [bench(tmp_path, f"node-{r}", "--nnodes", "2", "--node-rank", str(r),
                   "--rdzv-endpoint", endpoint, "--rdzv-id", "t", "--json",
                   "--db", db0 if r == 0 else str(tmp_path / "node1.db")) for r in (1, 0)][::-1]
    try:
        outs = [p.communicate(timeout=150)[0] for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert [p.returncode for p in nodes] == [0, 0], outs
    return outs[0], outs[1]


@pytest.mark.slow
def test_two_localhost_nodes_store_one_cluster_row_per_window(tmp_path, monkeypatch):
    db0 = str(tmp_path / "node0.db")
    out0, out1 = two_nodes(tmp_path, db0)
    assert json.loads(out1[out1.index("{"):]) == {"node_rank": 1, "runs": []}
    store = Store(db0)
    (run,) = store.runs()
    rows = store.results(run["id"])
    for window in (0, 1):
        mine = [r for r in rows if r["window"] == window]
        (cluster,) = [r for r in mine if r["scope"] == "cluster"]
        nodes = sorted((r for r in mine if r["scope"] == "node"), key=lambda r: r["node"])
        ranks = [r for r in mine if r["scope"] == "rank"]
        assert [n["host"] for n in nodes] == ["node-0", "node-1"]
        assert sorted((r["rank"], r["host"]) for r in ranks) == [(0, "node-0"), (1, "node-1")]
        assert cluster["nodes"] == 2 and cluster["ranks"] == 2 and cluster["devices"] == 2
        # each host's CPU counted once: the cluster's energy is the two hosts' together
        assert cluster["energy_j"] == pytest.approx(sum(n["energy_j"] for n in nodes))
        assert cluster["tokens"] == sum(n["tokens"] for n in nodes)
        assert cluster["logical_flops"] == pytest.approx(sum(n["logical_flops"] for n in nodes))
    assert Store(str(tmp_path / "node1.db")).runs() == []

    # the same workload on one node, then the weak-scaling report over 1 and 2 nodes
    from click.testing import CliRunner

    from harness.cli import cli

    monkeypatch.setenv("ETAMETER_HOST_ROOT", str(tmp_path / "node-0"))
    one = CliRunner().invoke(cli, ["bench", *WORKLOAD, "--trials", "3", "--db", db0])
    assert one.exit_code == 0, one.output
    result = CliRunner().invoke(cli, ["scaling", "--db", db0, "--json"])
    assert result.exit_code == 0, result.output
    (group,) = json.loads(result.output)["groups"]
    small, big = group["points"]
    assert (small["nodes"], small["devices"], big["nodes"], big["devices"]) == (1, 1, 2, 2)
    assert small["efficiency"] == 1.0 and small["efficiency_ci_low"] is None
    assert big["efficiency_ci_low"] < big["efficiency"] < big["efficiency_ci_high"]
    def per_device(run_id):  # the mean over the run's top windows, from the store
        rows = [r for r in Store(db0).results(run_id) if r["scope"] in ("cluster", "node")]
        top = [r for r in rows if r["scope"] == "cluster"] or rows
        return sum(r["tokens_per_s"] / r["devices"] for r in top) / len(top)

    assert big["efficiency"] == pytest.approx(per_device(big["run_id"]) /
                                              per_device(small["run_id"]), rel=1e-9)
    text = CliRunner().invoke(cli, ["scaling", "--db", db0, "--plot", str(tmp_path / "s.png")])
    assert text.exit_code == 0, text.output
    assert "weak-scaling efficiency" in text.output and (tmp_path / "s.png").stat().st_size > 0
    line = next(ln for ln in text.output.splitlines() if ln.strip().startswith("2 "))
    assert f"{100 * big['efficiency']:.1f}% [{100 * big['efficiency_ci_low']:.1f}%" in line


def test_slurm_variables_fill_the_multinode_options():
    env = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "4", "SLURM_NODEID": "2",
           "SLURM_STEP_NODELIST": "gpu[07-09,12]", "SLURM_JOB_NODELIST": "gpu[01-12]"}
    assert slurm_options(env) == {"nnodes": 4, "node_rank": 2, "rdzv_endpoint": "gpu07:29500",
                                  "rdzv_id": "slurm-4242"}
    assert slurm_options({**env, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "6000"})[
        "rdzv_endpoint"] == "10.0.0.1:6000"
    del env["SLURM_STEP_NODELIST"]
    assert slurm_options(env)["rdzv_endpoint"] == "gpu01:29500"
    assert first_host("a1,b2") == "a1" and first_host("n[3]") == "n3"
    with pytest.raises(ConfigError, match="SLURM_NODEID"):
        slurm_options({"SLURM_JOB_ID": "1", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "a"})


def test_the_documented_slurm_batch_script_fills_the_options(tmp_path, monkeypatch):
    """The batch script of docs/distributed.md, its srun line run with the variables Slurm
    sets on the second node: the bench gets the cluster options from them."""
    import re
    import shlex

    from click.testing import CliRunner

    import harness.runner
    from harness.cli import cli

    doc = (ROOT / "docs" / "distributed.md").read_text()
    script = next(b for b in re.findall(r"```bash\n(.*?)```", doc, re.S) if "#SBATCH" in b)
    assert "--nodes=2" in script and "--ntasks-per-node=1" in script
    slurm = {"SLURM_JOB_ID": "777", "SLURM_NNODES": "2", "SLURM_JOB_NUM_NODES": "2",
             "SLURM_NODEID": "1", "SLURM_PROCID": "1", "SLURM_LOCALID": "0",
             "SLURM_JOB_NODELIST": "gpu-[017-018]", "SLURM_STEP_NODELIST": "gpu-[017-018]",
             "SLURMD_NODENAME": "gpu-018"}
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    for line in script.splitlines():  # the script's own exports
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            monkeypatch.setenv(name, value)
    (srun,) = [ln for ln in script.splitlines() if ln.startswith("srun ")]
    argv = shlex.split(os.path.expandvars(srun))[2:]  # past "srun etameter"
    argv = [str(tmp_path / Path(a).name) if a.startswith("/tmp/") else a for a in argv]
    seen = {}
    monkeypatch.setattr(harness.runner, "run_sweep",
                        lambda cfg, store, observer=None, command="": seen.setdefault("cfg", cfg) and [])
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.nnodes, cfg.node_rank, cfg.rdzv_endpoint, cfg.rdzv_id, cfg.nproc) == \
        (2, 1, "gpu-017:29500", "slurm-777", 8)
    assert "node 1 of 2" in result.output
    assert (tmp_path / "etameter-777.db").exists()


class _FakeGroup:
    """torch.distributed as rank 0 of three ranks on two hosts sees it at a window edge."""

    def __init__(self, others):
        self.others = others

    def get_rank(self):
        return 0

    def get_world_size(self):
        return 1 + len(self.others)

    def all_gather_object(self, out, mine):
        out[:] = [mine, *self.others]


def test_cluster_rows_count_each_host_and_device_once(db_path):
    from dataclasses import replace

    from profiler.measurement import Energy, Window
    from profiler.recorder import WindowRecorder

    def window(rank, host, duration, energy):
        return Window(window=0, steps=1, duration_s=duration, tokens=100.0, logical_flops=1e9,
                      logical_flops_per_token=1e7, attention_convention="full", precision="fp32",
                      peak_flops_per_s=1e12, peak_source="test", device_key=f"cpu:{host}",
                      energy=Energy(energy, "cpu_estimate", "cpu", True), host=host,
                      scope="rank", rank=rank)

    store = Store(db_path)
    run_id = store.start_run(scenario="train", preset="tiny", variant="fp32", device="cpu",
                             device_type="cpu", attention_convention="full", config={},
                             environment={}, command="test")
    seen = []

    class Metrics:
        def observe(self, row):
            seen.append((row["scope"], row["rank"], row["node"]))

    rec = WindowRecorder(store, run_id, metrics=Metrics())
    rec.dist, rec.rank, rec.world = _FakeGroup([window(1, "a", 2.0, 30.0),
                                                window(2, "b", 1.5, 50.0)]), 0, 3
    top = rec.record(replace(window(0, "a", 1.0, 20.0), scope="node", rank=None))
    assert top["scope"] == "cluster" and top["nodes"] == 2 and top["ranks"] == 3
    # host a's CPU once (its longest rank's reading, 30 J), host b's once (50 J)
    assert top["energy_j"] == 80.0 and top["tokens"] == 300.0 and top["duration_s"] == 2.0
    rows = store.results(run_id)
    nodes = {r["host"]: r for r in rows if r["scope"] == "node"}
    assert (nodes["a"]["energy_j"], nodes["a"]["tokens"], nodes["a"]["node"]) == (30.0, 200.0, 0)
    assert (nodes["b"]["energy_j"], nodes["b"]["node"]) == (50.0, 1)
    assert sorted((r["rank"], r["node"]) for r in rows if r["scope"] == "rank") == \
        [(0, 0), (1, 0), (2, 1)]
    # the exporter sees this rank's own row, then the cluster and node rows (rank 0)
    assert seen == [("rank", 0, None), ("cluster", None, None), ("node", None, 0),
                    ("node", None, 1)]
