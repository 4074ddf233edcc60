"""The stored runs as table rows (one per run, from its summary over the windows), and the
reasons behind every missing value."""

from __future__ import annotations

from profiler.store import process_gone
from reports.numbers import MISSING, estimated, first_line, pct, si

COLUMNS = ("run", "started", "status", "workload", "variant", "device", "tokens/s", "MFU",
           "energy method", "eta (FLOP/J)", "tokens/J", "quality")


def quality_text(run: dict) -> str:
    """``ok``, ``FLAGGED`` or n/a: a variant outside tolerance is flagged wherever it is shown."""
    if run.get("quality_ok") is None:
        return MISSING
    return "ok" if run["quality_ok"] else "FLAGGED"


def run_rows(runs: list[dict]) -> tuple[list[list[str]], list[str]]:
    """One row per run and the footnotes explaining missing values, failures and flags."""
    rows, notes = [], []
    for run in runs:
        short = run["id"][:8]
        s = run.get("summary") or {}
        est = s.get("energy_estimated")
        workload = " ".join(x for x in (run.get("preset"), run.get("scenario"),
                                        f"attn={run.get('attention_convention')}") if x)
        status = run["status"]
        if process_gone(run):
            status = "running (process gone)"
            notes.append(f"{short}: its process {run['pid']} on {run['host']} is gone: it died "
                         "without recording an ending")
        rows.append([
            short, (run.get("started_at") or "")[:16].replace("T", " "), status,
            workload, run.get("variant") or "", run.get("device") or "",
            si(s.get("tokens_per_s")), pct(s.get("mfu")), s.get("energy_method") or MISSING,
            estimated(si(s.get("eta_flops_per_j")), est),
            estimated(si(s.get("tokens_per_j")), est), quality_text(run),
        ])
        if run.get("error"):
            notes.append(f"{short}: {run['status']}: {first_line(run['error'])}")
        if run["status"] != "ok":
            continue
        if s.get("mfu") is None and s.get("mfu_reason"):
            notes.append(f"{short}: MFU n/a: {s['mfu_reason']}")
        if s.get("eta_flops_per_j") is None and s.get("eta_reason"):
            notes.append(f"{short}: eta n/a: {s['eta_reason']}")
        if run.get("quality_ok") is False:
            notes.append(f"{short}: quality outside tolerance: {s['quality']['reason']}")
        if s.get("flags"):
            notes.append(f"{short}: flags: {', '.join(s['flags'])}")
    return rows, notes
