"""One self-contained HTML page that leads with the answer: per group of comparable runs
(reports.compare: same workload, device, meter and sweep), the verdict of each variant against
that group's reference and its plots; then the tables (each comparison, the runs) and the power
timelines. Plots are embedded as base64 PNG images (no file or network access needed to view
it); the page fits a 1280-pixel window without scrolling sideways (tests/test_html_browser.py
checks it in Chromium)."""

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
from reports.verdicts import verdict_lines

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h1,h2,h3,p,li,th,td{overflow-wrap:break-word}
h2{font-size:1.25em;margin-top:1.6em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:1em 0;font-size:13px;max-width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.flag{color:#b00;font-weight:bold}.note{color:#555;font-size:12px}
ul.verdicts{padding-left:1.2em}ul.verdicts li{margin:.3em 0}
.faster{color:#1a7f37;font-weight:bold}.slower{color:#b00;font-weight:bold}
img{max-width:100%;height:auto;display:block;margin:.5em 0}"""


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


def _verdicts(group: dict) -> str:
    """The group's answer as a list: each variant against the reference (reports.verdicts)."""
    items = []
    for line in verdict_lines(group):
        css = line["verdict"] if line["verdict"] in ("faster", "slower") else ""
        text = html.escape(line["text"])
        if css:
            text = text.replace(html.escape(line["verdict"]),
                                f'<span class="{css}">{html.escape(line["verdict"])}</span>', 1)
        items.append(f"<li><b>{html.escape(line['variant'])}</b>: {text}</li>")
    return f'<ul class="verdicts">{"".join(items)}</ul>'


def html_report(runs: list[dict], store, title: str = "etameter report") -> str:
    """The page as a string: the answer first (each group's verdicts and plots, throughput
    against the swept size), then the tables (each group's comparison, the runs), then the
    power timelines."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(runs)} runs from {html.escape(str(store.path))}, generated '
             f'{datetime.now(timezone.utc).isoformat(timespec="seconds")}. Values marked '
             f'"(estimated)" come from a model, not a meter; FLAGGED variants failed the quality '
             f'guard.</p>']
    groups = group_documents(runs, min_runs=2)
    tables = []
    for n, group in enumerate(groups, 1):
        heading = f"{group['title']}, against {group['baseline_variant']}"
        parts += [f'<h2 id="group-{n}">{html.escape(heading)}</h2>', _verdicts(group)]
        try:
            parts.append(_img(variants_figure([group]), f"eta and MFU by variant: {heading}"))
        except ConfigError:
            pass  # no ok run in this group: the verdicts say why
        parts.append(f'<p class="note"><a href="#table-{n}">the table of this comparison</a></p>')
        cells, cnotes = comparison_cells(group["rows"])
        tables += [f'<h3 id="table-{n}">Comparison: {html.escape(heading)}</h3>',
                   _table(COMPARE_COLUMNS, cells), _notes(group["notes"] + cnotes)]
    for key in ("batch_size", "seq_len"):
        try:
            img = _img(throughput_figure(runs, key), f"throughput against {key}")
        except ConfigError:
            continue  # fewer than two values of this key: nothing to plot
        parts += [f"<h2>Throughput against {key}</h2>", img]
    alone = len(runs) - len({row["run_id"] for g in groups for row in g["rows"]})
    parts += ["<h2>Tables</h2>"] + tables
    rows, notes = run_rows(runs)
    parts += ["<h3>Runs</h3>", _table(COLUMNS, rows), _notes(notes)]
    if alone:
        parts.append(_notes([f"{alone} run(s) have no other run in their group (same workload, "
                             "device, meter and sweep): they are in the table above only"]))
    power = []
    for run in (r for r in runs if r["status"] == "ok"):
        samples = store.power_samples(run["id"])
        if samples:
            short = html.escape(str(run["id"])[:8])
            power += [f"<h3>Run {short} ({html.escape(str(run['variant']))})</h3>",
                      _img(power_figure(run, samples), f"power timeline of run {short}")]
    parts += (["<h2>Power timelines</h2>"] + power) if power else []
    parts.append("</body></html>")
    return "\n".join(parts)
