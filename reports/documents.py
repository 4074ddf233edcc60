"""The JSON documents the CLI prints with ``--json``: one bench run, a sweep of variants, the
logical FLOPs of a preset, the presets.

Each is plain data (dicts, lists, numbers, strings), with a run's summary keys flat so a
script reads ``doc["eta_flops_per_j"]`` without knowing the store's layout.
"""

from __future__ import annotations

from reports.compare import comparison


def bench_document(run: dict) -> dict:
    """The JSON document of one run: its identity, its summary keys flat, then the windows
    (the node-level rows; under --nproc each process's rows are under ``rank_windows``)."""
    config = run["config"]
    summary = dict(run.get("summary") or {})
    windows, rank_windows = [], []
    for r in run.get("results") or []:
        r = {k: v for k, v in r.items() if k != "run_id"}
        (rank_windows if r.get("scope") == "rank" else windows).append(r)
    return {
        "run_id": run["id"], "status": run["status"], "reason": run.get("error"),
        "scenario": run["scenario"], "variant": run["variant"],
        "preset": run["preset"], "preset_reason": config.get("preset_reason"),
        "batch_size": config.get("batch_size"), "seq_len": config.get("seq_len"),
        "device": config.get("device"), **summary, "quality_ok": run.get("quality_ok"),
        "windows": windows, "rank_windows": rank_windows, "meter": config.get("meter"),
        "meters_tried": config.get("meters_tried"), "environment": run["environment"],
    }


def sweep_document(scenario: str, runs: list[dict]) -> dict:
    """The JSON document of a sweep: every run's document and the comparison against the
    first run (the reference variant)."""
    return {"scenario": scenario, "preset": runs[0]["preset"],
            "reference_variant": runs[0]["variant"],
            "runs": [bench_document(r) for r in runs], "comparison": comparison(runs)}


def runs_document(scenario: str, runs: list[dict]) -> dict:
    """What ``etameter bench --json`` prints: one run's document, or the sweep's."""
    return bench_document(runs[0]) if len(runs) == 1 else sweep_document(scenario, runs)


def flops_document(preset: str, batch_size: int, seq_len: int, flops) -> dict:
    """The logical FLOPs of ``preset`` (a ``profiler.flops`` result) with the sizes used."""
    return {"preset": preset, "batch_size": batch_size, "seq_len": seq_len, **flops.to_dict()}


def presets_document(presets) -> list[dict]:
    """One dict per preset (``harness.presets.PRESETS.values()``)."""
    return [{"name": p.name, "description": p.description, "batch_size": p.batch_size,
             "seq_len": p.seq_len, "model": p.model.to_dict()} for p in presets]
