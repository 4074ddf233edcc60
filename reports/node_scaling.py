"""Weak scaling over runs of one workload at 1, 2, ... nodes (or ranks): ``etameter scaling``.

A bench's batch is per rank, so runs of one workload on more devices do more work in the same
step: weak scaling. For each run the per-device figures come from its top windows (the
``cluster`` rows of a multi-node run, else the ``node`` rows; profiler.measurement.top_rows):
tokens/s per device, MFU (against the summed dense peaks, so already per device) and eta,
each with the 95% interval of its geometric mean over the windows. The weak-scaling
efficiency of a run is its per-device tokens/s over the smallest run's (fewest devices),
with the 95% interval of that ratio (profiler.stats.ratio_interval); one whose interval
contains 1.0 says "no significant difference".

Runs share a workload when they share model, scenario, per-rank batch and sequence, variant,
device name, attention convention and meter (not the sweep: each node count is its own bench).
"""

from __future__ import annotations

from profiler.errors import ConfigError
from profiler.measurement import top_rows
from profiler.stats import NO_DIFFERENCE, geometric_interval, ratio_interval, ratio_verdict

WORKLOAD_FIELDS = ("model", "scenario", "batch_size", "seq_len", "variant", "device",
                   "attention_convention", "meter")
#: (output name, how to get it from a top row)
FIGURES = (("tokens_per_s_per_device", lambda r: r["tokens_per_s"] / (r.get("devices") or 1)),
           ("mfu", lambda r: r.get("mfu")),
           ("eta_flops_per_j", lambda r: r.get("eta_flops_per_j")))


def workload_of(run: dict) -> tuple:
    """The fields a run must share with another to be on the same scaling curve."""
    cfg = run.get("config") or {}
    meter = (cfg.get("meter") or {}).get("method") if "meter" in cfg else None
    model = run.get("preset") or str(cfg.get("model"))
    return (model, run.get("scenario"), cfg.get("batch_size"), cfg.get("seq_len"),
            run.get("variant"), run.get("device"), run.get("attention_convention"), meter)


def _run_point(run: dict) -> dict | None:
    rows = top_rows(run.get("results") or [])
    if not rows:
        return None
    first = rows[0]
    point = {"run_id": run["id"], "nodes": first.get("nodes") or 1, "ranks": first.get("ranks") or 1,
             "devices": first.get("devices") or 1, "windows": len(rows),
             "energy_estimated": bool(first.get("energy_estimated")), "_values": {}}
    for name, get in FIGURES:
        values = [get(r) for r in rows]
        point["_values"][name] = [] if None in values else values
        ci = geometric_interval(point["_values"][name])
        point[name] = ci.value if ci else (values[0] if len(values) == 1 else None)
        point[f"{name}_ci_low"], point[f"{name}_ci_high"] = (ci.low, ci.high) if ci else (None, None)
    return point


def scaling_groups(runs: list[dict]) -> list[dict]:
    """One group per workload with runs at two or more sizes; each group's points sorted by
    devices, each with its weak-scaling efficiency against the smallest."""
    by_workload: dict[tuple, list[dict]] = {}
    for run in runs:
        if run.get("status") != "ok":
            continue
        point = _run_point(run)
        if point is not None:
            by_workload.setdefault(workload_of(run), []).append(point)
    groups = []
    for key, points in by_workload.items():
        points.sort(key=lambda p: (p["devices"], p["nodes"], p["run_id"]))
        if len({(p["devices"], p["nodes"]) for p in points}) < 2:
            continue
        base = points[0]
        for p in points:
            ci = None if p is base else ratio_interval(p["_values"]["tokens_per_s_per_device"],
                                                       base["_values"]["tokens_per_s_per_device"])
            p["efficiency"] = 1.0 if p is base else ci.value if ci else _plain_ratio(p, base)
            p["efficiency_ci_low"], p["efficiency_ci_high"] = (ci.low, ci.high) if ci else (None, None)
            p["verdict"] = ("the baseline" if p is base else
                            ratio_verdict(ci, "super-linear", "below linear") or
                            "no interval (fewer than two windows)")
        groups.append({**dict(zip(WORKLOAD_FIELDS, key)), "baseline_run": base["run_id"],
                       "points": [{k: v for k, v in p.items() if k != "_values"} for p in points]})
    return groups


def _plain_ratio(p: dict, base: dict) -> float | None:
    a, b = p["tokens_per_s_per_device"], base["tokens_per_s_per_device"]
    return a / b if a and b else None


def scaling_document(runs: list[dict]) -> dict:
    """The ``etameter scaling`` document; refuses when no workload has two sizes."""
    groups = scaling_groups(runs)
    if not groups:
        raise ConfigError("no workload has ok runs at two or more sizes (nodes or ranks): run the "
                          "same bench at --nnodes 1 and 2 (or --nproc 1 and 2) into one --db")
    return {"kind": "weak_scaling", "no_difference": NO_DIFFERENCE, "groups": groups}


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _si(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _ci(p: dict, key: str, fmt) -> str:
    low, high = p.get(f"{key}_ci_low"), p.get(f"{key}_ci_high")
    return f"{fmt(p[key])} [{fmt(low)}, {fmt(high)}]" if low is not None else fmt(p[key])


def scaling_lines(doc: dict) -> list[str]:
    """The scaling table, one block per workload."""
    lines = []
    for g in doc["groups"]:
        lines.append(f"{g['model']} {g['scenario']} {g['batch_size']}x{g['seq_len']} per rank, "
                     f"{g['variant']} on {g['device']} (meter {g['meter'] or 'none'})")
        lines.append("  nodes ranks devices  tokens/s per device [95%]  MFU [95%]  "
                     "eta FLOP/J [95%]  weak-scaling efficiency [95%]  run")
        for p in g["points"]:
            est = " (estimated)" if p["energy_estimated"] and p["eta_flops_per_j"] else ""
            lines.append(f"  {p['nodes']:>5} {p['ranks']:>5} {p['devices']:>7}  "
                         f"{_ci(p, 'tokens_per_s_per_device', _si)}  {_ci(p, 'mfu', _pct)}  "
                         f"{_ci(p, 'eta_flops_per_j', _si)}{est}  "
                         f"{_ci(p, 'efficiency', _pct)} ({p['verdict']})  {p['run_id'][:8]}")
    return lines


def scaling_figure(doc: dict):
    """Per group: weak-scaling efficiency against devices, with 95% intervals, 100% dashed."""
    from reports.plots import _pyplot, plain

    plt = _pyplot()
    groups = doc["groups"]
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, g in zip(axes[0], groups):
        xs = [p["devices"] for p in g["points"]]
        ys = [100 * (p["efficiency"] or 0) for p in g["points"]]
        err = [[100 * (p["efficiency"] - p["efficiency_ci_low"]) if p["efficiency_ci_low"] is not None
                else 0 for p in g["points"]],
               [100 * (p["efficiency_ci_high"] - p["efficiency"]) if p["efficiency_ci_high"] is not None
                else 0 for p in g["points"]]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4)
        ax.axhline(100, ls="--", lw=1, color="grey")
        for p, x, y in zip(g["points"], xs, ys):
            ax.annotate(f"{p['nodes']} node{'s' if p['nodes'] > 1 else ''}", (x, y),
                        textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_xlabel("devices")
        ax.set_ylabel("weak-scaling efficiency, % (95% interval)")
        ax.set_title(plain(f"{g['model']} {g['scenario']} {g['variant']} on {g['device']}"),
                     fontsize=9)
    fig.tight_layout()
    return fig
