"""The stored runs as rows for a table, and the reasons behind every missing value."""

from __future__ import annotations

from reports.format import estimated, pct, si

COLUMNS = ("run", "started", "status", "workload", "device", "tokens/s", "FLOP/s", "MFU",
           "energy method", "eta (FLOP/J)", "tokens/J")


def run_rows(runs: list[dict]) -> tuple[list[list[str]], list[str]]:
    """One row per (run, result window) and the footnotes explaining missing values."""
    rows, notes = [], []
    for run in runs:
        short = run["id"][:8]
        workload = " ".join(x for x in (run.get("preset"), run.get("scenario"), run.get("variant"),
                                        f"attn={run.get('attention_convention')}") if x)
        base = [short, (run.get("started_at") or "")[:16].replace("T", " "), run["status"],
                workload, run.get("device") or ""]
        results = run.get("results") or []
        if not results:
            rows.append(base + ["-"] * (len(COLUMNS) - len(base)))
            if run.get("error"):
                notes.append(f"{short}: {run['status']}: {run['error']}")
            continue
        for res in results:
            est = res.get("energy_estimated")
            rows.append(base + [
                si(res.get("tokens_per_s")),
                si(res.get("flops_per_s")),
                pct(res.get("mfu")),
                res.get("energy_method") or "none",
                estimated(si(res.get("eta_flops_per_j")), est),
                estimated(si(res.get("tokens_per_j")), est),
            ])
            if res.get("mfu") is None and res.get("mfu_reason"):
                notes.append(f"{short}: MFU n/a: {res['mfu_reason']}")
            if res.get("eta_flops_per_j") is None and res.get("eta_reason"):
                notes.append(f"{short}: eta n/a: {res['eta_reason']}")
            if res.get("flags"):
                notes.append(f"{short}: flags: {', '.join(res['flags'])}")
    return rows, notes
