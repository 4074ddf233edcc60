"""Aggregating the windows of several processes (torchrun ranks) into one node-level window.

Each rank measures its own device and reports a :class:`profiler.measurement.Window`,
identified by a stable device key (``gpu:<UUID>``, or ``cpu:<host>`` for the CPU). Rank 0
combines them into one window, which becomes a row through the same
:func:`profiler.measurement.window_row` as every other window:

- energy, idle power and dense peaks: summed over *distinct* devices. Ranks sharing a device
  (two processes on one GPU, or every CPU rank on one host) measured the same board, so it
  is counted once, from the rank with the longest window;
- time: the longest rank's window (the node is done when its slowest rank is);
- logical FLOPs and tokens: summed over ranks (each rank did its own share of the work).

:func:`aggregate_cluster` does the same over the ranks of several hosts, with devices told
apart by (host, device key), so a device is counted once however many ranks share it.
"""

from __future__ import annotations

from dataclasses import replace

from profiler.measurement import Energy, Window


def _sum_or_none(values):
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _energy(by_device: dict[str, Window]) -> Energy:
    parts = [w.energy for w in by_device.values()]
    total = _sum_or_none(e.energy_j for e in parts)
    missing = [f"{key}: {w.energy.reason or 'no energy'}" for key, w in by_device.items()
               if w.energy.energy_j is None]
    return Energy(
        energy_j=total,
        method="+".join(sorted({e.method for e in parts if e.method})) or None,
        scope="+".join(sorted({e.scope for e in parts if e.scope})) or None,
        estimated=any(bool(e.estimated) for e in parts),
        reason="; ".join(missing) or None,
        peak_power_w=_sum_or_none(e.peak_power_w for e in parts),
        flags=tuple(sorted({f for e in parts for f in e.flags})),
        devices=tuple(d for e in parts for d in e.devices),
        band_j=_band(parts),
    )


def _band(parts: list[Energy]) -> tuple[float, float] | None:
    """The summed band where any device has one (the others count their energy at both ends)."""
    if not any(e.band_j for e in parts) or any(e.energy_j is None for e in parts):
        return None
    return (sum(e.band_j[0] if e.band_j else e.energy_j for e in parts),
            sum(e.band_j[1] if e.band_j else e.energy_j for e in parts))


def aggregate(windows: list[Window]) -> Window:
    """One node-level window from per-rank windows."""
    if not windows:
        raise ValueError("no rank reported a window")
    by_device: dict[str, Window] = {}
    for w in windows:
        best = by_device.get(w.device_key)
        if best is None or w.duration_s > best.duration_s:
            by_device[w.device_key] = w
    distinct = list(by_device.values())
    peak = _sum_or_none(w.peak_flops_per_s for w in distinct)
    own_peak = _sum_or_none(w.variant_peak_flops_per_s for w in distinct)
    ceiling = _sum_or_none(w.ceiling_flops_per_s for w in distinct)
    idle = _sum_or_none(w.idle_power_w for w in distinct)
    first = windows[0]
    unknown = next((w for w in distinct if w.peak_flops_per_s is None), None)
    return replace(
        first, scope="node", rank=None, ranks=len(windows), devices=len(by_device),
        steps=max(w.steps for w in windows),
        duration_s=max(w.duration_s for w in windows),
        tokens=sum(w.tokens for w in windows),
        logical_flops=sum(w.logical_flops for w in windows),
        logical_flops_per_step=None,
        peak_flops_per_s=peak,
        peak_source=(_peak_source(len(distinct), len(windows), first.peak_source)
                     if unknown is None else f"{unknown.device_key}: {unknown.peak_source}"),
        variant_peak_flops_per_s=own_peak,
        ceiling_flops_per_s=ceiling,
        ceiling_reason=next((w.ceiling_reason for w in distinct if w.ceiling_flops_per_s is None),
                            None),
        idle_power_w=idle,
        idle_reason=next((w.idle_reason for w in distinct if w.idle_power_w is None), None),
        energy=_energy(by_device),
        flags=tuple(sorted({f for w in windows for f in w.flags})),
        device_key="+".join(sorted(by_device)),
        detail={"device_keys": sorted(by_device)},
        power_traces=tuple((f"rank{w.rank}:{label}", trace) for w in distinct
                           for label, trace in w.power_traces),
    )


def aggregate_cluster(windows: list[Window]) -> Window:
    """One cluster-level window from the rank windows of several hosts: energy, idle power and
    peaks once per distinct (host, device), the slowest rank's time, FLOPs and tokens summed."""
    keyed = [replace(w, device_key=f"{w.host}/{w.device_key}") for w in windows]
    hosts = {w.host for w in windows}
    cluster = aggregate(keyed)
    return replace(cluster, scope="cluster", host=None, node=None, nodes=len(hosts),
                   detail={**cluster.detail, "hosts": sorted(hosts)})


def _peak_source(devices: int, ranks: int, source: str) -> str:
    """Where a node's dense peak comes from, in words that fit the count."""
    if devices == 1:
        return f"the dense peak of the one device all {ranks} ranks share ({source})"
    return f"sum of {devices} devices' dense peaks ({source})"
