"""The stored runs as rows for a table, and the reasons behind every missing value."""

from __future__ import annotations

from reports.format import estimated, pct, si

COLUMNS = ("run", "started", "status", "preset", "scenario", "precision", "device",
           "tokens/s", "FLOP/s", "MFU", "energy", "method", "eta (FLOP/J)", "tokens/J",
           "attention")


def run_rows(runs: list[dict]) -> tuple[list[list[str]], list[str]]:
    """One row per (run, result window) and the footnotes explaining missing values."""
    rows, notes = [], []
    for run in runs:
        short = run["id"][:8]
        base = [short, (run.get("started_at") or "")[:19].replace("T", " "), run["status"],
                run.get("preset") or "", run.get("scenario") or "", run.get("variant") or "",
                run.get("device") or ""]
        results = run.get("results") or []
        if not results:
            rows.append(base + ["-"] * (len(COLUMNS) - len(base) - 1)
                        + [run.get("attention_convention") or ""])
            if run.get("error"):
                notes.append(f"{short}: {run['status']}: {run['error']}")
            continue
        for res in results:
            est = res.get("energy_estimated")
            rows.append(base + [
                si(res.get("tokens_per_s")),
                si(res.get("flops_per_s")),
                pct(res.get("mfu")),
                estimated(si(res.get("energy_j"), "J"), est),
                res.get("energy_method") or "none",
                estimated(si(res.get("eta_flops_per_j")), est),
                estimated(si(res.get("tokens_per_j")), est),
                res.get("attention_convention") or "",
            ])
            if res.get("mfu") is None and res.get("mfu_reason"):
                notes.append(f"{short}: MFU n/a: {res['mfu_reason']}")
            if res.get("eta_flops_per_j") is None and res.get("eta_reason"):
                notes.append(f"{short}: eta n/a: {res['eta_reason']}")
            if res.get("flags"):
                notes.append(f"{short}: flags: {', '.join(res['flags'])}")
    return rows, notes
