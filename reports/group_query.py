"""Comparisons over a store of any size: the groups of comparable runs found in SQL
(``Store.group_counts`` over the indexed group columns), and each group's documents built
from only that group's runs and windows (``Store.group_runs``), so a view costs the groups it
shows, not the runs stored.

The groups and documents are those of ``reports.compare`` (``compare_groups``,
``group_documents``) over the same runs: same fields, same latest run per variant, same
notes; a skipped run without a meter joins the groups it matches otherwise.
"""

from __future__ import annotations

import hashlib
import json

from profiler.errors import ConfigError
from profiler.store.summary_columns import GROUP_COLUMNS
from reports.compare import GROUP_FIELDS, _latest_notes, group_document

def _fields(across_sweeps: bool) -> dict[str, str]:
    return {f: GROUP_COLUMNS[f] for f in GROUP_FIELDS if not (across_sweeps and f == "sweep")}


def group_id(key: tuple) -> str:
    """A short, stable name of a group (its key hashed), for ``compare --group``."""
    text = json.dumps([None if v is None else str(v) for v in key])
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _key(fields: dict, across_sweeps: bool) -> tuple:
    return tuple(None if f == "sweep" and across_sweeps else fields.get(f) for f in GROUP_FIELDS)


def group_list(store, across_sweeps: bool = False, baseline: str | None = None, *,
               compared_only: bool = False, limit: int | None = None,
               **filters) -> tuple[list[dict], int]:
    """The groups of the selected runs, newest first (the newest ``limit`` of them), and how
    many there are: each with ``key`` (as ``compare.group_key``), ``id`` (``group_id``),
    ``runs``, ``variants``, ``latest`` and ``baseline_runs`` (how many are of variant
    ``baseline``). Runs without a meter are counted in each group they join (or form their
    own when none matches). ``compared_only``: only groups with ``baseline`` and another
    variant. The grouping, counting, ordering and limit are done in SQL."""
    found, total = store.group_counts(_fields(across_sweeps), variant_of_note=baseline,
                                      null_join="meter", compared_only=compared_only,
                                      limit=limit, **filters)
    for g in found:
        g["key"] = _key(g["key"], across_sweeps)
        g["id"] = group_id(g["key"])
        g["baseline_runs"] = g.pop("noted")
    return found, total


def find_group(store, group: str, across_sweeps: bool = False, **filters) -> dict:
    """The group named ``group`` (an id of ``group_list``, or its start)."""
    matches = [g for g in group_list(store, across_sweeps, **filters)[0]
               if g["id"].startswith(group)]
    if len(matches) != 1:
        raise ConfigError(f"--group {group!r} matches {len(matches)} groups: "
                          + ("give more of its id" if matches else
                             "see the group ids etameter compare lists (with the same filters "
                             "and --across-sweeps)"))
    return matches[0]


def load_group(store, key: tuple, across_sweeps: bool, latest: bool, **filters):
    """The runs of group ``key`` with their windows, oldest first, and how many earlier runs
    of a variant ``latest`` (only the newest run per variant) left out."""
    fields = _fields(across_sweeps)
    values = dict(zip(GROUP_FIELDS, key))
    return store.group_runs(fields, {f: values[f] for f in fields}, latest_per_variant=latest,
                            null_joins=("meter",), **filters)


def compare_document(store, group: dict, baseline: str, across_sweeps: bool = False,
                     **filters) -> dict | None:
    """``compare_groups``' document of one group: every variant's latest run against the
    latest run of ``baseline``; None when the group has no run of it or nothing else."""
    members, dropped = load_group(store, group["key"], across_sweeps, True, **filters)
    ref = next((r for r in members if r["variant"] == baseline), None)
    if ref is None or len(members) < 2:
        return None
    doc = group_document(group["key"], [ref] + [r for r in members if r is not ref], ref,
                         _latest_notes(dropped, across_sweeps))
    return doc | {"group_id": group["id"]}


def iter_compare(store, baseline: str, groups: list[dict], across_sweeps: bool = False,
                 **filters):
    """The comparison documents of ``groups`` (from ``group_list``), one at a time; groups
    without ``baseline`` and another variant are passed over."""
    for g in groups:
        if g["variants"] < 2 or not g["baseline_runs"]:
            continue
        doc = compare_document(store, g, baseline, across_sweeps, **filters)
        if doc is not None:
            yield doc


def no_group_error(store, baseline: str, **filters) -> ConfigError:
    """The error of a comparison with no group to show, naming the variants selected."""
    variants = sorted(str(g["key"]["variant"])
                      for g in store.group_counts({"variant": "variant"}, **filters)[0])
    return ConfigError(
        f"no group has a run of baseline variant {baseline!r} and another run to compare "
        f"(variants selected: {', '.join(variants) or 'none'}); runs compare within one "
        "sweep: use --across-sweeps, or name the runs with --run ID")


def variant_documents(store, across_sweeps: bool, limit: int | None,
                      **filters) -> tuple[list[dict], int]:
    """``group_documents`` of the newest ``limit`` groups (all with None), each against its
    first run, and how many groups there are in all: what ``plot variants`` draws."""
    groups, total = group_list(store, across_sweeps, limit=limit, **filters)
    out = []
    for g in groups:
        members, dropped = load_group(store, g["key"], across_sweeps, across_sweeps, **filters)
        if members:
            out.append(group_document(g["key"], members, members[0],
                                      _latest_notes(dropped, across_sweeps)))
    return out, total
