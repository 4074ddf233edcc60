"""Derived columns of ``runs``: what reports group, filter and order by, kept as plain indexed
columns so that no query parses a run's JSON per row.

Each column is an SQL expression over the run's own row (its ``config`` and ``summary`` JSON,
read with ``json_extract``; text that is not valid JSON reads as empty, as the decoded run
does). Schema 4 adds them, fills them for every stored run in SQL, and keeps them current with
triggers on every insert and on every update of the columns they derive from, so no writer
(bench, tracker, import, merge, a plugin) can leave them stale. They are an index of the run,
not data: exports leave them out and imports recompute them.

A file of an older schema opened for reading is read as it is (its next writer migrates it):
queries then use the expressions themselves (:func:`column_sql`), slower but the same answer.

The group columns match ``reports.compare.group_fields`` (a test checks that the two agree).
"""

from __future__ import annotations

#: The run's config and summary as JSON text, or NULL where the text is not valid JSON.
_CFG = "(CASE WHEN json_valid(config) THEN config END)"
_SUM = "(CASE WHEN json_valid(summary) THEN summary END)"


def _model_sql(cfg: str) -> str:
    parts = " || ".join(
        f"'{prefix}' || ifnull(json_extract({cfg}, '$.model.{key}'), 'None')"
        for prefix, key in (("L", "n_layers"), (" d", "d_model"), (" H", "n_heads"),
                            (" V", "vocab_size")))
    return (f"(CASE WHEN preset IS NOT NULL AND preset <> '' THEN preset "
            f"WHEN json_type({cfg}, '$.model') = 'object' AND json_extract({cfg}, '$.model') "
            f"<> '{{}}' THEN {parts} END)")


def derived_expressions(cfg: str = _CFG, summary: str = _SUM,
                        device_key: str = "device_key") -> dict[str, tuple[type, str]]:
    """Column name -> (type, SQL expression over the run's row), in the schema-4 definition."""
    return {
        # what a comparison groups by (reports.compare.GROUP_FIELDS, with scenario,
        # attention_convention and variant which are columns already)
        "model": (str, _model_sql(cfg)),
        "batch_size": (int, f"json_extract({cfg}, '$.batch_size')"),
        "seq_len": (int, f"json_extract({cfg}, '$.seq_len')"),
        "ranks": (int, f"coalesce(nullif(CAST(json_extract({cfg}, '$.world_size') AS INTEGER), 0), 1)"),
        "group_device": (str, f"coalesce(nullif({device_key}, ''), device)"),
        "meter_method": (str, f"(CASE WHEN json_type({cfg}, '$.meter') IS NOT NULL THEN "
                              f"coalesce(nullif(json_extract({cfg}, '$.meter.method'), ''), "
                              f"'none') ELSE json_extract({summary}, '$.energy_method') END)"),
        "sweep_id": (str, f"coalesce(nullif(json_extract({cfg}, '$.sweep_id'), ''), "
                          "'run ' || substr(id, 1, 8))"),
        # the run's summary over its windows (medians), for listings that show no window
        "tokens_per_s": (float, f"json_extract({summary}, '$.tokens_per_s')"),
        "mfu": (float, f"json_extract({summary}, '$.mfu')"),
        "eta_flops_per_j": (float, f"json_extract({summary}, '$.eta_flops_per_j')"),
        "energy_method": (str, f"json_extract({summary}, '$.energy_method')"),
        "energy_estimated": (int, f"json_extract({summary}, '$.energy_estimated')"),
        "windows": (int, f"json_extract({summary}, '$.windows')"),
    }


#: The derived columns (schema 4), name -> type.
DERIVED_COLUMNS: dict[str, type] = {k: t for k, (t, _) in derived_expressions().items()}
#: The columns they are computed from: an update of one of these recomputes them.
SOURCE_COLUMNS = ("id", "config", "summary", "preset", "device", "device_key")
#: The group columns of a comparison, in the order of ``reports.compare.GROUP_FIELDS``.
GROUP_COLUMNS = {"model": "model", "scenario": "scenario", "batch_size": "batch_size",
                 "seq_len": "seq_len", "ranks": "ranks", "device": "group_device",
                 "attention_convention": "attention_convention", "meter": "meter_method",
                 "sweep": "sweep_id"}


def refresh_sql(where: str = "id = new.id") -> str:
    """The UPDATE that recomputes every derived column of the runs matching ``where``."""
    sets = ", ".join(f'"{name}" = {expr}' for name, (_, expr) in derived_expressions().items())
    return f"UPDATE runs SET {sets} WHERE {where}"


def column_sql(name: str, present: set[str] | frozenset[str]) -> str:
    """``name`` as SQL over runs: the column where the file has it, else its expression (a file
    of an older schema, read as it is)."""
    if name in present or name not in DERIVED_COLUMNS:
        return f'"{name}"'
    device_key = "device_key" if "device_key" in present else "NULL"
    return derived_expressions(device_key=device_key)[name][1]
