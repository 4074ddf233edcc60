"""Live metrics: the rows of recorded windows published to Prometheus while a run goes on.

:class:`MetricsExporter` is fed by :class:`profiler.recorder.WindowRecorder` (the one place
windows are recorded), so a bench, a tracker loop and a node run publish the same figures the
store holds. Each exporter has its own ``CollectorRegistry`` (nothing global, nothing at
import; ``prometheus_client`` is imported only when an exporter is made: the ``prometheus``
extra). Names follow Prometheus conventions, units in the name:

- counters: ``etameter_energy_joules_total``, ``etameter_logical_flops_total``,
  ``etameter_tokens_total``, ``etameter_window_seconds_total``, ``etameter_windows_total``;
- gauges (the last window): ``etameter_power_watts``, ``etameter_mfu_ratio``,
  ``etameter_eta_flops_per_joule``, ``etameter_tokens_per_second``.

Labels: ``run_id``, ``variant``, ``precision``, ``device``, ``scope`` (``rank``, ``node`` or
``cluster``), ``rank`` and ``node`` (empty where the row is not one rank's or one node's), and
``estimated`` (``true`` where the energy is modelled, not metered). A figure the row lacks is
absent, never 0: a window without MFU removes the MFU gauge's series, a window without energy
adds no energy.

It serves ``/metrics`` on a port (``[ADDR:]PORT``; under torchrun each local rank serves on
PORT + LOCAL_RANK) and/or pushes to a Pushgateway after every window (grouped by run id and
global rank, so ranks do not replace each other's metrics). On close, when it serves on a
port, it waits (up to ``final_scrape_s``) for one scrape after the last window, so a short
run's last figures reach the server, even a run whose windows all ended before the first
scrape.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

from profiler.errors import ConfigError

LABELS = ("run_id", "variant", "precision", "device", "scope", "rank", "node", "estimated")
#: counter name -> the row key it adds up.
COUNTERS = {"etameter_energy_joules": ("energy_j", "Energy of the recorded windows (J)"),
            "etameter_logical_flops": ("logical_flops", "Logical FLOPs of the recorded windows"),
            "etameter_tokens": ("tokens", "Tokens of the recorded windows"),
            "etameter_window_seconds": ("duration_s", "Time in recorded windows (s)")}
#: gauge name -> the row key it shows (the last window's value).
GAUGES = {"etameter_power_watts": ("avg_power_w", "Average power over the last window (W)"),
          "etameter_mfu_ratio": ("mfu", "MFU of the last window, against the dense peak (ratio)"),
          "etameter_eta_flops_per_joule": ("eta_flops_per_j",
                                           "Logical FLOPs per joule over the last window"),
          "etameter_tokens_per_second": ("tokens_per_s", "Tokens per second over the last window")}


def parse_address(spec, local_rank: int = 0) -> tuple[str, int]:
    """``PORT`` or ``ADDR:PORT`` (an int is a port) -> (addr, port + local_rank)."""
    text = str(spec)
    addr, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"prometheus port {text!r} is not PORT or ADDR:PORT "
                          "(for example 9400 or 127.0.0.1:9400)") from None
    if not 0 < number + local_rank < 65536:
        raise ConfigError(f"prometheus port {number + local_rank} is out of range 1-65535")
    return addr or "0.0.0.0", number + local_rank


class _ScrapeWatch:
    """A collector that only notes when the registry was last collected (scraped)."""

    def __init__(self):
        self.count = 0
        self.last = 0.0

    def collect(self):
        self.count += 1
        self.last = time.monotonic()
        return []


class MetricsExporter:
    """Publishes window rows as Prometheus metrics (see the module docstring).

    ``labels`` holds the run's fixed labels (``run_id``, ``variant``, ``precision``,
    ``device``); ``port`` (``[ADDR:]PORT``) serves them, ``pushgateway`` (a URL) receives
    them after every window under job ``job``. ``printer`` reports a failed push (the run goes on).
    """

    def __init__(self, labels: dict, port=None, pushgateway: str | None = None,
                 job: str = "etameter", final_scrape_s: float = 5.0, local_rank: int | None = None,
                 printer=None):
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigError("live metrics need prometheus-client: pip install "
                              "'etameter[prometheus]' (or pip install prometheus-client)") from None
        if port is None and pushgateway is None:
            raise ConfigError("a metrics exporter needs a port or a Pushgateway URL")
        if pushgateway is not None and not str(pushgateway).startswith(("http://", "https://")):
            raise ConfigError(f"--pushgateway {pushgateway!r} is not a URL: give "
                              "http://HOST:PORT")
        self._prom = prom
        self.labels = {k: str(labels.get(k) or "") for k in ("run_id", "variant", "precision",
                                                              "device")}
        self.pushgateway, self.job, self.final_scrape_s = pushgateway, job, final_scrape_s
        self.printer = printer or (lambda text: print(text, file=sys.stderr))
        self.registry = prom.CollectorRegistry(auto_describe=False)
        self._counters = {n: prom.Counter(n, doc, LABELS, registry=self.registry)
                          for n, (_, doc) in COUNTERS.items()}
        self._windows = prom.Counter("etameter_windows", "Windows recorded", LABELS,
                                     registry=self.registry)
        self._gauges = {n: prom.Gauge(n, doc, LABELS, registry=self.registry)
                        for n, (_, doc) in GAUGES.items()}
        self._watch = _ScrapeWatch()
        self.registry.register(self._watch)
        self._lock = threading.Lock()
        self._updated = 0.0
        self._push_failed = False
        self.server = self.address = None
        if port is not None:
            rank = int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank
            self.address = parse_address(port, rank)
            try:
                self.server, _ = prom.start_http_server(self.address[1], self.address[0],
                                                        registry=self.registry)
            except OSError as e:
                raise ConfigError(f"cannot serve metrics on {self.address[0]}:{self.address[1]}"
                                  f" ({e.strerror or e}): choose a free port") from None

    def set_run_id(self, run_id: str | None) -> None:
        """The run id label (known on every rank only once rank 0 has shared it)."""
        self.labels["run_id"] = str(run_id or "")

    def observe(self, row: dict) -> None:
        """Add one window row (any scope) to the counters and set the gauges."""
        values = {**self.labels, "precision": row.get("variant_precision") or row.get("precision")
                  or self.labels["precision"],
                  "scope": row.get("scope") or "node",
                  "rank": "" if row.get("rank") is None else str(row["rank"]),
                  "node": "" if row.get("node") is None else str(row["node"]),
                  "estimated": "true" if row.get("energy_estimated") else "false"}
        key = tuple(values[k] for k in LABELS)
        with self._lock:
            for name, (field, _) in COUNTERS.items():
                if row.get(field) is not None:
                    self._counters[name].labels(*key).inc(float(row[field]))
            self._windows.labels(*key).inc()
            for name, (field, _) in GAUGES.items():
                gauge = self._gauges[name]
                if row.get(field) is not None:
                    gauge.labels(*key).set(float(row[field]))
                else:  # missing is absent, never 0
                    try:
                        gauge.remove(*key)
                    except KeyError:
                        pass
            self._updated = time.monotonic()
        self._push()

    def _push(self) -> None:
        if self.pushgateway is None:
            return
        try:
            self._prom.push_to_gateway(self.pushgateway, job=self.job, registry=self.registry,
                                       grouping_key={"run_id": self.labels["run_id"] or "none",
                                                     "rank": os.environ.get("RANK", "0")})
        except OSError as e:
            if not self._push_failed:
                self.printer(f"etameter: could not push metrics to {self.pushgateway}: {e}; "
                             "the run goes on and the store keeps every window")
            self._push_failed = True

    def close(self) -> None:
        """Wait for a scrape after the last window (when something scrapes), then stop."""
        if self.server is None:
            return
        if self._updated:  # a window was published: let a scrape take the last one
            deadline = time.monotonic() + self.final_scrape_s
            while self._watch.last <= self._updated and time.monotonic() < deadline:
                time.sleep(0.05)
        self.server.shutdown()
        self.server.server_close()
        self.server = None


@contextmanager
def exporting(labels: dict, port=None, pushgateway: str | None = None, **kwargs):
    """A :class:`MetricsExporter` for the block, or None when neither port nor gateway is set."""
    if port is None and pushgateway is None:
        yield None
        return
    exporter = MetricsExporter(labels, port, pushgateway, **kwargs)
    try:
        yield exporter
    finally:
        exporter.close()


def shared_run_id(run_id: str | None, dist) -> str | None:
    """Rank 0's run id on every rank (a collective: every rank must call it)."""
    if dist is None:
        return run_id
    box = [run_id]
    dist.broadcast_object_list(box, src=0)
    return box[0]
