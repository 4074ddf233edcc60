"""The metrics exporter without a server: names, units and labels, a missing MFU absent (not
0), counters that add up windows, a Pushgateway push, and clear errors for bad addresses."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

prom = pytest.importorskip("prometheus_client")

from profiler.errors import ConfigError  # noqa: E402
from profiler.metrics_export import MetricsExporter, parse_address  # noqa: E402

LABELS = {"run_id": "r1", "variant": "bf16", "precision": "bf16", "device": "Fake GPU"}


def row(**kw):
    base = {"scope": "node", "rank": None, "node": None, "energy_j": 10.0, "logical_flops": 1e12,
            "tokens": 100.0, "duration_s": 2.0, "avg_power_w": 5.0, "mfu": 0.4,
            "eta_flops_per_j": 1e11, "tokens_per_s": 50.0, "energy_estimated": 0,
            "variant_precision": "bf16"}
    return {**base, **kw}


def samples(exporter) -> dict:
    out = {}
    for family in exporter.registry.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_counters_add_windows_and_gauges_show_the_last():
    exporter = MetricsExporter(LABELS, pushgateway="http://127.0.0.1:1")  # no server
    exporter._push = lambda: None
    exporter.observe(row())
    exporter.observe(row(energy_j=20.0, mfu=0.5))
    s = samples(exporter)
    assert s["etameter_energy_joules_total"][0][1] == 30.0
    assert s["etameter_logical_flops_total"][0][1] == 2e12
    assert s["etameter_tokens_total"][0][1] == 200.0
    assert s["etameter_windows_total"][0][1] == 2
    labels, mfu = s["etameter_mfu_ratio"][0]
    assert mfu == 0.5 and labels == {**LABELS, "scope": "node", "rank": "", "node": "",
                                     "estimated": "false"}
    assert {"etameter_power_watts", "etameter_eta_flops_per_joule",
            "etameter_tokens_per_second"} <= set(s)


def test_missing_mfu_and_energy_are_absent_not_zero():
    exporter = MetricsExporter(LABELS, pushgateway="http://127.0.0.1:1")
    exporter._push = lambda: None
    exporter.observe(row())
    exporter.observe(row(mfu=None, energy_j=None, avg_power_w=None, eta_flops_per_j=None))
    s = samples(exporter)
    assert "etameter_mfu_ratio" not in s and "etameter_power_watts" not in s
    assert s["etameter_energy_joules_total"][0][1] == 10.0  # only the metered window
    exporter.observe(row(energy_estimated=1, scope="rank", rank=3))
    labels = [lab for lab, _ in samples(exporter)["etameter_mfu_ratio"]]
    assert labels[0]["estimated"] == "true" and labels[0]["rank"] == "3"


def test_each_exporter_has_its_own_registry():
    a = MetricsExporter(LABELS, pushgateway="http://127.0.0.1:1")
    b = MetricsExporter(LABELS, pushgateway="http://127.0.0.1:1")
    assert a.registry is not b.registry and a.registry is not prom.REGISTRY


def test_pushgateway_receives_each_window(monkeypatch):
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    monkeypatch.setenv("RANK", "3")
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        exporter = MetricsExporter(LABELS, pushgateway=f"http://127.0.0.1:{server.server_port}")
        exporter.observe(row())
    finally:
        server.shutdown()
        server.server_close()
    (path, body), = received
    assert path == "/metrics/job/etameter/rank/3/run_id/r1"
    assert b"etameter_energy_joules_total" in body


def test_a_failed_push_is_reported_once_and_the_run_goes_on():
    said = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    exporter = MetricsExporter(LABELS, pushgateway=f"http://127.0.0.1:{port}", printer=said.append)
    exporter.observe(row())
    exporter.observe(row())
    assert len(said) == 1 and "could not push" in said[0]


def test_serves_on_a_port_and_refuses_a_busy_one():
    import urllib.request

    exporter = MetricsExporter(LABELS, port="127.0.0.1:0".replace(":0", f":{_free()}"))
    try:
        exporter.observe(row())
        host, port = exporter.address
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read()
        assert b'etameter_mfu_ratio{' in body
        with pytest.raises(ConfigError, match="choose a free port"):
            MetricsExporter(LABELS, port=f"127.0.0.1:{port}")
    finally:
        exporter.close()


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_addresses():
    assert parse_address(9400) == ("0.0.0.0", 9400)
    assert parse_address("127.0.0.1:9400", local_rank=2) == ("127.0.0.1", 9402)
    with pytest.raises(ConfigError, match="PORT or ADDR:PORT"):
        parse_address("nine")
    with pytest.raises(ConfigError, match="not a URL"):
        MetricsExporter(LABELS, pushgateway="gateway:9091")
