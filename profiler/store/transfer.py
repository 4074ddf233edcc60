"""Export and import of stored runs, and merging databases (``etameter export``, ``import``,
``merge``).

- JSON carries everything: runs, results, power samples, environments, devices and
  calibrations, as stored (``Store.run_records``).
- CSV and Parquet (Parquet needs pyarrow) carry one table, a row per result window joined
  with its run, columns ``run__<name>`` and ``result__<name>``, plus the run's environment
  (``profiler.store.frame``, the table ``reports.load`` also returns).
  Power samples and calibrations are not in them: use JSON to move those.

Runs keep their unique ids, so importing or merging the same runs twice adds nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from profiler.errors import ConfigError, StoreError
from profiler.files import check_input_file, write_atomically
from profiler.store.db import Store
from profiler.store.frame import ENVIRONMENT_COLUMN, flat_frame
from profiler.store.schema import SCHEMA_VERSION

FORMATS = ("json", "csv", "parquet")
EXPORT_TAG = "etameter_export"


def format_of(path: str | Path, fmt: str | None) -> str:
    fmt = fmt or Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} for {path}: use one of {FORMATS} "
                          "(from the file suffix or --format)")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as e:
            raise ConfigError("Parquet needs pyarrow: pip install pyarrow (the 'etameter[parquet]' extra), or use .json or .csv") from e
    return fmt


def export_runs(store: Store, runs: list[dict], path: str | Path, fmt: str | None = None, *,
                force: bool = False) -> dict:
    """Write ``runs`` (and what belongs to them) to ``path``; returns what was written.

    Never onto the database itself, never over an existing file without ``force``, and through
    a temporary file renamed into place.
    """
    fmt = format_of(path, fmt)
    records = store.run_records(runs)

    def write(tmp: str) -> None:
        if fmt == "json":
            Path(tmp).write_text(json.dumps({EXPORT_TAG: 1, **records}, default=str,
                                            allow_nan=False))
        else:
            frame = flat_frame(records)
            frame.to_csv(tmp, index=False) if fmt == "csv" else frame.to_parquet(tmp, index=False)

    write_atomically(path, write, force=force, protected=(store.path,), what="export file")
    return {"format": fmt, "runs": len(records["runs"]), "results": len(records["results"]),
            "power_samples": len(records["power_samples"]) if fmt == "json" else 0}


def export_selection(store: Store, path: str | Path, fmt: str | None = None, *,
                     force: bool = False, **filters) -> dict:
    """``export_runs`` of the runs the filters select (``Store.run_ids``), streamed: JSON
    and CSV are written a few hundred runs at a time (``profiler.store.streaming``), so
    memory does not grow with the number of runs; Parquet is built in memory."""
    from profiler.store import streaming

    fmt = format_of(path, fmt)
    if fmt == "parquet":
        return export_runs(store, store.iter_runs(**filters), path, fmt, force=force)
    counts = {}

    def write(tmp: str) -> None:
        with store._snapshot(), open(tmp, "w", encoding="utf-8", newline="") as out:
            ids = store.run_ids(**filters)
            counts.update(streaming.write_json_records(store, ids, out, EXPORT_TAG, SCHEMA_VERSION)
                          if fmt == "json" else streaming.write_csv_table(store, ids, out))

    write_atomically(path, write, force=force, protected=(store.path,), what="export file")
    return {"format": fmt, "runs": counts["runs"], "results": counts["results"],
            "power_samples": counts["power_samples"] if fmt == "json" else 0}


def _typed(value, kind, column: str = "a cell"):
    """A cell read back from CSV/Parquet, converted to the column's type (None when empty)."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    try:
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError("not a whole number")
            return int(number)
        if kind is float:
            return float(value)
    except (TypeError, ValueError, OverflowError):
        raise StoreError(f"{column}: {str(value)[:40]!r} is not a "
                         f"{'whole number' if kind is int else 'number'}") from None
    return str(value)


def _records_from_frame(frame, store: Store) -> dict:
    run_types = store.db["runs"].columns_dict
    result_types = store.db["results"].columns_dict
    if "run__id" not in frame.columns:
        raise StoreError("this file has no run__id column: it is not an etameter CSV or Parquet "
                         "export (a JSON export needs --format json)")
    runs, results, envs = {}, [], {}
    for i, row in enumerate(frame.to_dict("records")):
        run = {k[5:]: _typed(v, run_types.get(k[5:], str), f"row {i + 1} {k}")
               for k, v in row.items() if k.startswith("run__") and k != ENVIRONMENT_COLUMN}
        if not run.get("id"):
            raise StoreError("an imported row has no run__id: is this an etameter export?")
        runs.setdefault(run["id"], run)
        env_text = _typed(row.get(ENVIRONMENT_COLUMN), str)
        if env_text and run.get("environment_id"):
            envs[run["environment_id"]] = {"id": run["environment_id"], "json": env_text}
        res = {k[8:]: _typed(v, result_types.get(k[8:], str), f"row {i + 1} {k}")
               for k, v in row.items() if k.startswith("result__")}
        if res.get("run_id"):
            results.append(res)
    return {"schema_version": SCHEMA_VERSION, "runs": list(runs.values()), "results": results,
            "environments": list(envs.values())}


def import_file(store: Store, path: str | Path, fmt: str | None = None) -> dict:
    """Add the runs in an export file to ``store``; runs already there are skipped."""
    fmt = format_of(path, fmt)
    check_input_file(path, "import file")
    if fmt == "json":
        try:
            data = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise StoreError(f"{path} is not valid JSON: {str(e)[:200]}") from None
        if not isinstance(data, dict) or EXPORT_TAG not in data:
            raise StoreError(f"{path} is not an etameter export (no '{EXPORT_TAG}' key)")
        return store.add_records(data)
    import pandas as pd

    try:
        frame = (pd.read_csv(path, dtype=str, keep_default_na=False) if fmt == "csv"
                 else pd.read_parquet(path))
    except (UnicodeDecodeError, ValueError, OSError) as e:
        raise StoreError(f"{path} cannot be read as {fmt}: {str(e)[:200]}") from None
    return store.add_records(_records_from_frame(frame, store))


def merge(sources: list[str], into: str) -> dict:
    """Bring every run of ``sources`` into the database ``into``, without duplicates."""
    target = Path(into).resolve()
    if any(Path(s).resolve() == target for s in sources):
        raise ConfigError(f"--into {into} is also a source: merge into a different file")
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        raise ConfigError(f"no such database: {', '.join(missing)}")
    store = Store(into)
    totals: dict[str, int] = {}
    for source in sources:
        counts = store.add_records(Store(source, write=False).run_records())
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals
