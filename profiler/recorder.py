"""Recording the windows of one run: the same path for the bench runner, the tracker and
node runs under torchrun.

Every process passes its own :class:`profiler.measurement.Window` to :meth:`record`. Under
torch.distributed the windows are gathered at the window edge (the only collective), and
rank 0 aggregates them into a node window (:func:`profiler.distributed.aggregate`) and
stores one ``node`` row plus one ``rank`` row per process. Without torch.distributed the
process's own window is the node window. Rows are computed by
:func:`profiler.measurement.window_row` only, and pass the store's gate
(:func:`profiler.store.gate.admit_row`) before they are kept, shown or stored.
"""

from __future__ import annotations

from profiler.distributed import aggregate
from profiler.measurement import Window, summarise, window_row
from profiler.store.gate import admit_row


def dist_group():
    """torch.distributed when it is initialised, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


class WindowRecorder:
    """Turns windows into stored rows. ``store`` may be None (rows are only kept in memory);
    ``origin`` is the run-wide start on the meters' clock, so power traces line up."""

    def __init__(self, store=None, run_id: str | None = None, origin: float | None = None):
        self.store = store
        self.run_id = run_id
        self.origin = origin
        self.dist = dist_group()
        self.rank = self.dist.get_rank() if self.dist else 0
        self.world = self.dist.get_world_size() if self.dist else 1
        self.rows: list[dict] = []

    def record(self, window: Window) -> dict | None:
        """Record this process's window; returns the node row on rank 0, else None."""
        window = window.as_rank(self.rank) if self.world > 1 else window
        gathered = [window]
        if self.dist is not None:
            gathered = [None] * self.world
            self.dist.all_gather_object(gathered, window)
        if self.rank != 0:
            return None
        node = aggregate(gathered) if len(gathered) > 1 else window
        row = admit_row(window_row(node))  # what is shown is what is stored
        self.rows.append(row)
        if self.store is not None and self.run_id is not None:
            self.store.add_result(self.run_id, row)
            if len(gathered) > 1:
                for w in gathered:
                    self.store.add_result(self.run_id, window_row(w))
            for label, trace in node.power_traces:
                self.store.add_power_samples(self.run_id, node.window, label, trace, self.origin)
        return row

    def summary(self) -> dict:
        """The run's summary over the node rows recorded so far (rank 0)."""
        return summarise(self.rows)
