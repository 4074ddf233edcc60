"""Recording the windows of one run: the same path for the bench runner, the tracker and
node runs under torchrun.

Every process passes its own :class:`profiler.measurement.Window` to :meth:`record`. Under
torch.distributed the windows are gathered at the window edge (the only collective), and
rank 0 aggregates them into a node window (:func:`profiler.distributed.aggregate`) and
stores one ``node`` row plus one ``rank`` row per process. When the ranks span several hosts
it stores one ``cluster`` row (energy once per distinct host and device), one ``node`` row per
host and the ``rank`` rows. Without torch.distributed the process's own window is the node
window. Rows are computed by :func:`profiler.measurement.window_row` only; an optional
:class:`profiler.metrics_export.MetricsExporter` publishes the same rows as they are made
(each rank its own rank row, rank 0 the node and cluster rows). Every row passes the store's
gate (:func:`profiler.store.gate.admit_row`) before it is kept, shown or stored.
"""

from __future__ import annotations

from dataclasses import replace

from hardware_profiles.cpuinfo import host_name
from profiler.distributed import aggregate, aggregate_cluster
from profiler.measurement import Window, summarise, window_row
from profiler.store.gate import admit_row


def dist_group():
    """torch.distributed when it is initialised, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


class WindowRecorder:
    """Turns windows into stored rows. ``store`` may be None (rows are only kept in memory);
    ``origin`` is the run-wide start on the meters' clock, so power traces line up."""

    def __init__(self, store=None, run_id: str | None = None, origin: float | None = None,
                 metrics=None):
        self.store = store
        self.metrics = metrics
        self.run_id = run_id
        self.origin = origin
        self.dist = dist_group()
        self.rank = self.dist.get_rank() if self.dist else 0
        self.world = self.dist.get_world_size() if self.dist else 1
        self.rows: list[dict] = []

    def record(self, window: Window) -> dict | None:
        """Record this process's window; returns the node row on rank 0, else None."""
        window = replace(window, host=window.host or host_name())
        window = window.as_rank(self.rank) if self.world > 1 else window
        if self.metrics is not None and self.world > 1:
            self.metrics.observe(window_row(window))  # this rank's own row, on its endpoint
        gathered = [window]
        if self.dist is not None:
            gathered = [None] * self.world
            self.dist.all_gather_object(gathered, window)
        if self.rank != 0:
            return None
        hosts = sorted({w.host for w in gathered}, key=lambda h: min(w.rank or 0 for w in gathered
                                                                     if w.host == h))
        if len(hosts) > 1:
            ranks = [replace(w, node=hosts.index(w.host)) for w in gathered]
            nodes = [replace(aggregate([w for w in ranks if w.host == h]), node=i)
                     for i, h in enumerate(hosts)]
            top, parts = aggregate_cluster(ranks), [*nodes, *ranks]
        else:
            top = aggregate(gathered) if len(gathered) > 1 else window
            parts = gathered if len(gathered) > 1 else []
        row = admit_row(window_row(top))  # what is shown is what is stored
        self.rows.append(row)
        part_rows = [admit_row(window_row(w)) for w in parts]
        if self.metrics is not None:
            for r in [row, *(r for r in part_rows if r["scope"] == "node")]:
                self.metrics.observe(r)
        if self.store is not None and self.run_id is not None:
            self.store.add_result(self.run_id, row)
            for r in part_rows:
                self.store.add_result(self.run_id, r)
            for label, trace in top.power_traces:
                self.store.add_power_samples(self.run_id, top.window, label, trace, self.origin)
        return row

    def summary(self) -> dict:
        """The run's summary over the node rows recorded so far (rank 0)."""
        return summarise(self.rows)
