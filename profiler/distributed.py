"""Aggregating the windows of several processes (torchrun ranks) into one node-level window.

Each rank measures its own device and reports a window: its duration, tokens, logical FLOPs
and the energy of the device it used, identified by a stable device key (``gpu:<UUID>``, or
``cpu:<host>`` for the CPU). Rank 0 combines them:

- energy: summed over *distinct* devices. Ranks sharing a device (two processes on one GPU,
  or every CPU rank on one host) measured the same board, so it is counted once, from the
  rank with the longest window;
- time: the longest rank's window (the node is done when its slowest rank is);
- logical FLOPs and tokens: summed over ranks (each rank did its own share of the work).
"""

from __future__ import annotations


def aggregate(windows: list[dict]) -> dict:
    """One node-level window from per-rank windows (dicts with ``rank``, ``device_key``,
    ``duration_s``, ``tokens``, ``logical_flops``, ``energy_j`` (or None), ``energy_method``,
    ``energy_estimated``, ``peak_flops_per_s``)."""
    if not windows:
        raise ValueError("no rank reported a window")
    by_device: dict[str, dict] = {}
    for w in windows:
        best = by_device.get(w["device_key"])
        if best is None or w["duration_s"] > best["duration_s"]:
            by_device[w["device_key"]] = w
    duration_s = max(w["duration_s"] for w in windows)
    tokens = sum(w["tokens"] for w in windows)
    flops = sum(w["logical_flops"] for w in windows)
    device_energy = [d.get("energy_j") for d in by_device.values()]
    energy_j = None if any(e is None for e in device_energy) else sum(device_energy)
    missing = [f"{k}: {d.get('energy_reason') or 'no energy'}" for k, d in by_device.items()
               if d.get("energy_j") is None]
    peaks = [d.get("peak_flops_per_s") for d in by_device.values()]
    peak_total = None if any(p is None for p in peaks) else sum(peaks)
    flops_per_s = flops / duration_s
    return {
        "ranks": len(windows), "devices": len(by_device), "device_keys": sorted(by_device),
        "duration_s": duration_s, "tokens": tokens, "logical_flops": flops,
        "tokens_per_s": tokens / duration_s, "flops_per_s": flops_per_s,
        "peak_flops_per_s": peak_total,
        "mfu": flops_per_s / peak_total if peak_total else None,
        "mfu_reason": None if peak_total else "a device's dense peak is unknown",
        "energy_j": energy_j,
        "energy_reason": "; ".join(missing) or None,
        "avg_power_w": energy_j / duration_s if energy_j is not None else None,
        "eta_flops_per_j": flops / energy_j if energy_j else None,
        "tokens_per_j": tokens / energy_j if energy_j else None,
        "energy_method": "+".join(sorted({d.get("energy_method") or "none" for d in by_device.values()})),
        "energy_estimated": any(d.get("energy_estimated") for d in by_device.values()),
    }
