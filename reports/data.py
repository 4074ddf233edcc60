"""Runs as flat rows and DataFrames: what every report format is built from.

Each row keeps the measurement method, the estimated label and the quality verdict next to
the numbers, so no format can show a number without them.
"""

from __future__ import annotations

from profiler.measurement import INTERVAL_KEYS
from profiler.store import Store, process_gone
from profiler.store.frame import flat_frame

#: The summary figures of a row, in order; each of ``INTERVAL_KEYS`` is followed by its 95%
#: interval over windows (``_ci_low``, ``_ci_high``) and each estimated figure of ``BANDS`` by
#: the band it may lie in.
FIGURES = ("tokens_per_s", "tokens_per_s_spread", "flops_per_s", "logical_flops_per_step", "mfu",
           "mfu_reason", "mfu_vs_variant_peak", "mfu_vs_ceiling", "energy_j", "energy_method",
           "energy_scope", "energy_estimated", "avg_power_w", "eta_flops_per_j", "eta_reason",
           "tokens_per_j", "energy_net_j", "compile_time_s")
BANDS = {"energy_j": ("energy_low_j", "energy_high_j"),
         "eta_flops_per_j": ("eta_low_flops_per_j", "eta_high_flops_per_j")}
SUMMARY_COLUMNS = tuple(
    c for key in FIGURES
    for c in (key, *((f"{key}_ci_low", f"{key}_ci_high") if key in INTERVAL_KEYS else ()),
              *BANDS.get(key, ())))
#: Columns of a flat per-run row, in order.
ROW_COLUMNS = (
    "run_id", "started_at", "status", "preset", "scenario", "variant", "device", "device_key",
    "batch_size", "seq_len", "attention_convention", *SUMMARY_COLUMNS,
    "quality", "quality_reason", "flags", "error",
)


def run_row(run: dict) -> dict:
    """One run as a flat row (its summary: medians over its windows)."""
    s = run.get("summary") or {}
    cfg = run.get("config") or {}
    quality = s.get("quality") or {}
    status = run["status"] + (" (process gone)" if process_gone(run) else "")
    return {
        "run_id": run["id"], "started_at": run.get("started_at"), "status": status,
        "preset": run.get("preset"), "scenario": run.get("scenario"), "variant": run.get("variant"),
        "device": run.get("device"), "device_key": run.get("device_key"),
        "batch_size": cfg.get("batch_size"), "seq_len": cfg.get("seq_len"),
        "attention_convention": run.get("attention_convention"),
        **{k: s.get(k) for k in SUMMARY_COLUMNS},
        "quality": None if run.get("quality_ok") is None else ("ok" if run["quality_ok"] else "FLAGGED"),
        "quality_reason": quality.get("reason"),
        "flags": ",".join(s.get("flags") or []),
        "error": run.get("error"),
    }


def load(db_path: str, **filters):
    """A pandas DataFrame of every result window joined with its run (a run without results
    is one row), the table of ``profiler.store.frame``: columns ``run__<name>`` and
    ``result__<name>`` plus ``run__environment_json``, as in a CSV export.

    Filters as ``Store.runs``: status, preset, scenario, variant, device, since, until.
    """
    store = Store(db_path)
    try:
        return flat_frame(store.runs(**filters))
    finally:
        store.close()
