"""The list view of ``etameter compare``: one line per group of comparable runs with its id,
its newest run, its title and each variant's throughput verdict against the baseline, for
when there are more groups than full tables are worth printing (``--group ID`` opens one)."""

from __future__ import annotations

from reports.compare_table import ratio_cell

COLUMNS = ("group", "latest run", "group of runs", "baseline", "verdicts (tokens/s vs baseline)")


def list_cells(docs: list[dict], latest: dict[str, str]) -> list[list[str]]:
    """The cells of the list: ``docs`` from ``reports.group_query.iter_compare``, ``latest``
    the newest start time of each group id."""
    cells = []
    for doc in docs:
        verdicts = "; ".join(f"{r['variant']}: {r['verdict']}, {ratio_cell(r, 'speedup')}"
                             for r in doc["rows"] if r["verdict"] != "reference")
        cells.append([doc["group_id"], (latest.get(doc["group_id"]) or "")[:16].replace("T", " "),
                      doc["title"], f"{doc['baseline_variant']} ({doc['baseline_run'][:8]})",
                      verdicts])
    return cells


def list_notes(shown: int, total: int, limit_hint: bool) -> list[str]:
    """How many groups are listed, and how to see one, or more of them."""
    notes = [f"{shown} of {total} group(s) with the baseline and another variant, newest "
             "first; open one group's full table with --group ID"]
    if limit_hint:
        notes.append("see more with --limit N or --all, or narrow the runs with --since, "
                     "--until, --preset, --scenario, --variant, --device or --status")
    return notes
