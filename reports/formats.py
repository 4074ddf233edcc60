"""Text formats of a report: markdown, CSV and JSON, from the flat rows of reports.data."""

from __future__ import annotations

import csv
import io
import json

from reports.data import ROW_COLUMNS, run_row
from reports.format import MISSING, estimated, pct, si

MARKDOWN_COLUMNS = ("run", "started", "status", "workload", "variant", "device", "tokens/s",
                    "MFU", "energy method", "eta (FLOP/J)", "quality")


def markdown(runs: list[dict]) -> str:
    """A markdown table plus notes; estimated values and flagged quality are marked."""
    lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |",
             "|" + "---|" * len(MARKDOWN_COLUMNS)]
    notes = []
    for run in runs:
        r = run_row(run)
        est = r["energy_estimated"]
        cells = [r["run_id"][:8], (r["started_at"] or "")[:16].replace("T", " "), r["status"],
                 f"{r['preset']} {r['scenario']} attn={r['attention_convention']}",
                 r["variant"] or "", r["device"] or "", si(r["tokens_per_s"]), pct(r["mfu"]),
                 r["energy_method"] or MISSING, estimated(si(r["eta_flops_per_j"]), est),
                 r["quality"] or MISSING]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if r["quality"] == "FLAGGED":
            notes.append(f"- {r['run_id'][:8]}: quality outside tolerance: {r['quality_reason']}")
        if r["error"]:
            notes.append(f"- {r['run_id'][:8]}: {r['status']}: {r['error'].splitlines()[0]}")
        if r["mfu"] is None and r["mfu_reason"]:
            notes.append(f"- {r['run_id'][:8]}: MFU n/a: {r['mfu_reason']}")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def csv_text(runs: list[dict]) -> str:
    """CSV of the flat rows: energy_method, energy_estimated and quality are columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    for run in runs:
        writer.writerow(run_row(run))
    return out.getvalue()


def json_text(runs: list[dict], db_path: str) -> str:
    return json.dumps({"db": db_path, "runs": runs}, indent=2, default=str)
