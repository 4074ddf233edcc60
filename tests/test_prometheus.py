"""Live metrics against a real Prometheus server (the Debian ``prometheus`` package): the test
starts one on 127.0.0.1 scraping a tracker loop and a bench every second, queries its HTTP
API, and finds the energy, logical FLOPs and MFU the store holds for those windows; it runs
the Grafana dashboard's queries (docs/grafana/etameter.json) on the same server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from profiler.store import Store

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus server binary is not installed "
                                                  "(apt-get install -y prometheus)"),
    pytest.mark.slow,
]
pytest.importorskip("prometheus_client", reason="prometheus-client is not installed "
                                                "(pip install 'etameter[prometheus]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Server:
    """A Prometheus server in a temporary directory, bounded in time, stopped by the test."""

    def __init__(self, tmp_path: Path, targets: dict[str, int]):
        self.port = free_port()
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n"
                       f"      - targets: ['127.0.0.1:{port}']\n" for job, port in targets.items())
        config = tmp_path / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                          f"scrape_configs:\n{jobs}")
        self.log = open(tmp_path / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"http://127.0.0.1:{self.port}/-/ready", 1) is not None:
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"prometheus did not start: "
                                       f"{(tmp_path / 'prometheus.log').read_text()[-2000:]}")
                time.sleep(0.2)

    def query(self, expr: str) -> list[dict]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        doc = json.loads(get(url))
        assert doc["status"] == "success", (expr, doc)
        return doc["data"]["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def dashboard_queries() -> list[str]:
    doc = json.loads((ROOT / "docs" / "grafana" / "etameter.json").read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def node_rows(db: str, command: str) -> list[dict]:
    (run,) = [r for r in Store(db).runs() if r["command"].startswith(command)]
    assert run["status"] == "ok", run
    return [r for r in Store(db).results(run["id"]) if r["scope"] == "node"]


def test_prometheus_scrapes_the_figures_the_store_holds(tmp_path):
    from profiler.tracker import Tracker

    tracker_port, bench_port = free_port(), free_port()
    db = str(tmp_path / "e.db")
    server = Server(tmp_path, {"tracker": tracker_port, "bench": bench_port})
    bench = None
    try:
        bench = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--steps", "3",
             "--trials", "3", "--warmup", "1", "--no-quality", "--device", "cpu",
             "--prometheus-port", f"127.0.0.1:{bench_port}", "--db", str(tmp_path / "b.db")],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        tracker = Tracker(flops_per_token=1e6, device="cpu", window_steps=4, store=db,
                          printer=None, prometheus_port=f"127.0.0.1:{tracker_port}")
        deadline = time.monotonic() + 60
        dashboard_ran = False
        while time.monotonic() < deadline and not dashboard_ran:
            for _ in range(4):
                busy = time.monotonic() + 0.05  # a step that works: the CPU estimate charges
                while time.monotonic() < busy:  # this process's own CPU time (not sleep)
                    pass
                tracker.step(tokens=1000)
            scraped = server.query('count_over_time(etameter_tokens_total{job="tracker"}[1m])')
            if scraped and float(scraped[0]["value"][1]) >= 3:
                # mid-run: every panel of the dashboard answers, from the tracker's series
                for expr in dashboard_queries():
                    result = server.query(expr)
                    assert result or 'scope="rank"' in expr, expr
                dashboard_ran = True
        assert dashboard_ran, "prometheus never scraped the tracker three times"
        tracker.close()  # waits for the scrape after the last window
        out, _ = bench.communicate(timeout=180)
        assert bench.returncode == 0, out

        for job, rows in (("tracker", node_rows(db, "tracker")),
                          ("bench", node_rows(str(tmp_path / "b.db"), "etameter bench"))):
            sel = f'{{job="{job}",scope="node"}}[10m]'
            assert server.value(f"last_over_time(etameter_energy_joules_total{sel})") == \
                pytest.approx(sum(r["energy_j"] for r in rows), rel=1e-9)
            assert server.value(f"last_over_time(etameter_logical_flops_total{sel})") == \
                pytest.approx(sum(r["logical_flops"] for r in rows), rel=1e-9)
            assert server.value(f"last_over_time(etameter_tokens_total{sel})") == \
                pytest.approx(sum(r["tokens"] for r in rows), rel=1e-9)
            assert server.value(f"last_over_time(etameter_windows_total{sel})") == len(rows)
            assert server.value(f"last_over_time(etameter_mfu_ratio{sel})") == \
                pytest.approx(rows[-1]["mfu"], rel=1e-9)
            (series,) = server.query(f"last_over_time(etameter_eta_flops_per_joule{sel})")
            assert series["metric"]["estimated"] == "true"  # the CPU estimate, labelled
            assert float(series["value"][1]) == pytest.approx(rows[-1]["eta_flops_per_j"])
    finally:
        if bench is not None and bench.poll() is None:
            bench.kill()
        server.stop()
