"""The JSON documents the CLI prints with ``--json``: one bench run, a sweep of variants, the
logical FLOPs of a preset, the presets.

Each is plain data (dicts, lists, numbers, strings), with a run's summary keys flat so a
script reads ``doc["eta_flops_per_j"]`` without knowing the store's layout.
"""

from __future__ import annotations

from profiler.measurement import top_rows
from reports.compare import sweep_groups, sweep_of


def bench_document(run: dict) -> dict:
    """The JSON document of one run: its identity, its summary keys flat, then the windows
    (the node-level rows, or the cluster rows across nodes; under --nproc each process's rows
    are under ``rank_windows``, and across nodes each host's under ``node_windows``)."""
    config = run["config"]
    summary = dict(run.get("summary") or {})
    rows = [{k: v for k, v in r.items() if k != "run_id"} for r in run.get("results") or []]
    windows = top_rows(rows)
    rank_windows = [r for r in rows if r.get("scope") == "rank"]
    node_windows = [r for r in rows if r.get("scope") == "node" and windows and
                    windows[0].get("scope") == "cluster"]
    return {
        "run_id": run["id"], "status": run["status"], "reason": run.get("error"),
        "scenario": run["scenario"], "variant": run["variant"],
        "preset": run["preset"], "preset_reason": config.get("preset_reason"),
        "batch_size": config.get("batch_size"), "seq_len": config.get("seq_len"),
        "batch_reason": config.get("batch_reason"), "seq_len_reason": config.get("seq_len_reason"),
        "whole_model": config.get("whole_model"), "world_size": config.get("world_size") or 1,
        "device": config.get("device"), **summary, "quality_ok": run.get("quality_ok"),
        "windows": windows, "rank_windows": rank_windows,
        **({"node_windows": node_windows} if node_windows else {}), "meter": config.get("meter"),
        "meters_tried": config.get("meters_tried"), "environment": run["environment"],
    }


def sweep_document(scenario: str, runs: list[dict]) -> dict:
    """The JSON document of a sweep: every run's document, its groups (reports.compare: one
    unless the variants ended up with different meters) each with its comparison against the
    reference variant (the first), and ``comparison``, the rows of every group."""
    groups = sweep_groups(runs)
    return {"scenario": scenario, "preset": runs[0]["preset"],
            "reference_variant": runs[0]["variant"], "sweep_id": sweep_of(runs[0]),
            "runs": [bench_document(r) for r in runs], "groups": groups,
            "comparison": [row for g in groups for row in g["rows"]]}


def runs_document(scenario: str, runs: list[dict]) -> dict:
    """What ``etameter bench --json`` prints: one run's document, or the sweep's."""
    return bench_document(runs[0]) if len(runs) == 1 else sweep_document(scenario, runs)


def flops_document(preset: str, batch_size: int, seq_len: int, flops) -> dict:
    """The logical FLOPs of ``preset`` (a ``profiler.flops`` result) with the sizes used."""
    return {"preset": preset, "batch_size": batch_size, "seq_len": seq_len, **flops.to_dict()}
