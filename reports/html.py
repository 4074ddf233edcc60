"""One self-contained HTML page: the runs table, a section per group of comparable runs
(reports.compare: same workload, device, meter and sweep) comparing them with that group's
reference only, and the plots embedded as base64 PNG images (no file or network access
needed to view it)."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from profiler.errors import ConfigError
from reports.compare import group_documents
from reports.compare_table import COLUMNS as COMPARE_COLUMNS
from reports.compare_table import comparison_cells
from reports.plots import png_bytes, power_figure, throughput_figure, variants_figure
from reports.table import COLUMNS, run_rows

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.flag{color:#b00;font-weight:bold}.note{color:#555;font-size:12px}img{max-width:100%}"""


def _table(columns, rows) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="flag">{html.escape(str(c))}</td>' if "FLAGGED" in str(c)
            else f"<td>{html.escape(str(c))}</td>"
            for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _notes(notes) -> str:
    return "".join(f'<p class="note">{html.escape(str(n))}</p>' for n in notes)


def _img(fig, alt: str) -> str:
    data = base64.b64encode(png_bytes(fig)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_report(runs: list[dict], store, title: str = "etameter report") -> str:
    """The page as a string."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(runs)} runs from {html.escape(str(store.path))}, generated '
             f'{datetime.now(timezone.utc).isoformat(timespec="seconds")}. Values marked '
             f'"(estimated)" come from a model, not a meter; FLAGGED variants failed the quality '
             f'guard.</p>']
    rows, notes = run_rows(runs)
    parts += ["<h2>Runs</h2>", _table(COLUMNS, rows), _notes(notes)]
    groups = group_documents(runs, min_runs=2)
    alone = len(runs) - len({row["run_id"] for g in groups for row in g["rows"]})
    if alone:
        parts.append(_notes([f"{alone} run(s) have no other run in their group (same workload, "
                             "device, meter and sweep): they are in the table above only"]))
    for group in groups:
        heading = f"{group['title']}, against {group['baseline_variant']}"
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        cells, cnotes = comparison_cells(group["rows"])
        parts += [_table(COMPARE_COLUMNS, cells), _notes(group["notes"] + cnotes)]
        try:
            parts.append(_img(variants_figure([group]), f"eta and MFU by variant: {heading}"))
        except ConfigError:
            pass  # no ok run in this group: the table says why
    for key in ("batch_size", "seq_len"):
        try:
            img = _img(throughput_figure(runs, key), f"throughput against {key}")
        except ConfigError:
            continue  # fewer than two values of this key: nothing to plot
        parts += [f"<h2>Throughput against {key}</h2>", img]
    for run in (r for r in runs if r["status"] == "ok"):
        samples = store.power_samples(run["id"])
        if samples:
            short = html.escape(str(run["id"])[:8])
            parts += [f"<h2>Power: run {short} ({html.escape(str(run['variant']))})</h2>",
                      _img(power_figure(run, samples), f"power timeline of run {short}")]
    parts.append("</body></html>")
    return "\n".join(parts)
