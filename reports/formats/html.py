"""The ``html`` format: one self-contained page with tables and plots (reports.html)."""

from __future__ import annotations

from reports.formats import ReportFormat, register


def render(runs: list[dict], store) -> str:
    from reports.html import html_report

    return html_report(runs, store) + "\n"


FORMAT = register(ReportFormat("html", render, "a self-contained HTML page", with_results=True))
