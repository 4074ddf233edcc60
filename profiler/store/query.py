"""Reads that do the work in SQL: counting, filtering, ordering and grouping runs over the
indexed columns of ``runs`` (``profiler.store.summary_columns``), streaming runs one at a
time, and loading windows only for the runs a view shows.

Every generator reads in one snapshot (a read transaction held until it is exhausted or
closed) and holds at most one batch of runs (``BATCH_RUNS``) with their windows in memory,
whatever the number of runs stored.
"""

from __future__ import annotations

from profiler.store.reading import _decode_result, _decode_run, like_literal, parse_when
from profiler.store.summary_columns import column_sql

#: Runs decoded (with their windows) per query of a streaming read.
BATCH_RUNS = 500
FILTER_KEYS = ("status", "preset", "scenario", "variant", "device", "since", "until")


def filter_sql(status=None, preset=None, scenario=None, variant=None, device=None, since=None,
               until=None) -> tuple[str, list]:
    """The WHERE clause (``"1"`` when nothing is filtered) and its arguments for the run
    filters of ``Store.runs``: exact ``status``, ``preset``, ``scenario``, ``variant``;
    ``device`` matches part of the device name or key literally (any case); ``since``/
    ``until`` parsed strictly and compared with the start time."""
    clauses, args = [], []
    for column, value in (("status", status), ("preset", preset), ("scenario", scenario),
                          ("variant", variant)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if device is not None:
        clauses.append("(lower(device) like ? escape '\\' or lower(device_key) like ? escape '\\')")
        args += [f"%{like_literal(device.lower())}%"] * 2
    if since is not None:
        clauses.append("started_at >= ?")
        args.append(parse_when(since, "--since"))
    if until is not None:
        clauses.append("started_at < ?")
        args.append(parse_when(until, "--until", end=True))
    return " and ".join(clauses) or "1", args


class Query:
    """The SQL reads of :class:`profiler.store.db.Store` (a mixin: it uses the store's ``db``,
    ``path``, ``_snapshot`` and ``_environments``)."""

    def _run_columns(self) -> frozenset[str]:
        return frozenset(self.db["runs"].columns_dict)

    def _col(self, name: str) -> str:
        return column_sql(name, self._run_columns())

    def count_runs(self, **filters) -> int:
        """How many runs the filters select (``filter_sql``)."""
        where, args = filter_sql(**filters)
        with self._snapshot():
            return self.db.execute(f"select count(*) from runs where {where}", args).fetchone()[0]

    def run_ids(self, **filters) -> list[str]:
        """The ids of the selected runs, oldest first (no run is decoded)."""
        where, args = filter_sql(**filters)
        with self._snapshot():
            return [r[0] for r in self.db.execute(
                f"select id from runs where {where} order by started_at, rowid", args)]

    def iter_runs(self, *, limit: int | None = None, with_results: bool = False,
                  where: str | None = None, where_args: list | None = None, **filters):
        """The selected runs, decoded, oldest first, one at a time: with ``limit``, the latest
        ``limit`` of them (still oldest first). ``with_results`` loads each run's windows (by
        batches of ``BATCH_RUNS`` runs), else ``results`` is absent. ``where`` adds an SQL
        condition over runs (with its ``where_args``)."""
        clause, args = filter_sql(**filters)
        if where:
            clause, args = f"({clause}) and ({where})", args + list(where_args or [])
        if limit is None:
            sql = f"select * from runs where {clause} order by started_at, rowid"
        else:
            sql = (f"select * from (select *, rowid as _rowid from runs where {clause} "
                   "order by started_at desc, rowid desc limit ?) order by started_at, _rowid")
            args = args + [int(limit)]
        with self._snapshot():
            cursor = self.db.execute(sql, args)
            names = [d[0] for d in cursor.description]
            envs: dict[str, dict] = {}
            while True:
                batch = [dict(zip(names, row)) for row in cursor.fetchmany(BATCH_RUNS)]
                if not batch:
                    return
                yield from self._decoded(batch, envs, with_results)

    def _decoded(self, rows: list[dict], envs: dict, with_results: bool) -> list[dict]:
        missing = {r.get("environment_id") for r in rows} - set(envs)
        if missing:
            envs.update(self._environments(missing))
        runs = []
        for row in rows:
            row.pop("_rowid", None)
            runs.append(_decode_run(row, envs))
        if with_results:
            by_run = self._results_of([r["id"] for r in runs])
            for r in runs:
                r["results"] = by_run.get(r["id"], [])
        return runs

    def _results_of(self, run_ids: list[str]) -> dict[str, list[dict]]:
        """The windows of these runs, decoded, in window order."""
        out: dict[str, list[dict]] = {}
        for start in range(0, len(run_ids), BATCH_RUNS):
            chunk = run_ids[start:start + BATCH_RUNS]
            marks = ",".join("?" * len(chunk))
            cursor = self.db.execute(f"select * from results where run_id in ({marks}) "
                                     "order by run_id, window, id", chunk)
            names = [d[0] for d in cursor.description]
            for row in cursor:
                res = dict(zip(names, row))
                out.setdefault(res["run_id"], []).append(_decode_result(res))
        return out

    def group_counts(self, fields: dict[str, str], *, variant_of_note: str | None = None,
                     null_join: str | None = None, compared_only: bool = False,
                     limit: int | None = None, **filters) -> tuple[list[dict], int]:
        """The groups of the selected runs by ``fields`` (a group field -> a column of runs,
        e.g. ``summary_columns.GROUP_COLUMNS``), newest first, and how many there are: each
        group's field values (``key``), ``runs`` (how many), ``variants`` (how many
        distinct), ``latest`` (its newest start time) and ``noted`` (how many runs are of
        ``variant_of_note``).

        A run whose ``null_join`` field is NULL (a run skipped before it chose a meter) is
        counted in every group that matches it on the other fields, or forms its own when
        none does. ``compared_only`` keeps the groups with two variants or more, one of them
        ``variant_of_note``; ``limit`` returns only the newest groups. All of it is one query
        over the indexed columns; no run is decoded, and only the groups returned reach
        Python."""
        where, args = filter_sql(**filters)
        n = len(fields)
        cols = [f"f{i}" for i in range(n)]
        base = (", ".join(f"{self._col(c)} as f{i}" for i, c in enumerate(fields.values()))
                + f", variant, started_at from runs where {where}")
        if null_join is not None:  # without such runs (the common case), the plain query
            k = list(fields).index(null_join)
            exists = (f"select exists(select 1 from runs where ({where}) and "
                      f"{self._col(list(fields.values())[k])} is null)")
            with self._snapshot():
                if not self.db.execute(exists, args).fetchone()[0]:
                    null_join = None
        if null_join is None:
            cte = f"with j as (select {base})"
        else:
            k = list(fields).index(null_join)
            match = " and ".join(f"u.f{i} is h.f{i}" for i in range(n) if i != k) or "1"
            joined = ", ".join(f"h.f{i}" if i == k else f"u.f{i}" for i in range(n))
            cte = (f"with s as (select {base}), "
                   f"m as (select * from s where f{k} is not null), "
                   f"u as (select * from s where f{k} is null), "
                   f"h as (select distinct {', '.join(cols)} from m), "
                   f"j as (select * from m union all "
                   f"select {joined}, u.variant, u.started_at from u join h on {match} "
                   f"union all select * from u where not exists "
                   f"(select 1 from h where {match}))")
        having = " having count(distinct variant) >= 2 and sum(variant is ?) > 0" \
            if compared_only else ""
        sql = (f"{cte}, g as (select {', '.join(cols)}, count(*) as n, "
               f"count(distinct variant) as v, max(started_at) as latest, "
               f"sum(variant is ?) as noted from j group by {', '.join(cols)}{having}) "
               "select *, count(*) over () from g order by latest desc"
               + (" limit ?" if limit is not None else ""))
        args = args + [variant_of_note] + ([variant_of_note] if compared_only else []) \
            + ([int(limit)] if limit is not None else [])
        names = list(fields)
        with self._snapshot():
            rows = self.db.execute(sql, args).fetchall()
        total = rows[0][-1] if rows else 0
        return [{"key": dict(zip(names, row[:n])), "runs": row[n], "variants": row[n + 1],
                 "latest": row[n + 2], "noted": row[n + 3]} for row in rows], total

    def group_runs(self, fields: dict[str, str], key: dict, *, latest_per_variant: bool = False,
                   null_joins: tuple[str, ...] = (), **filters) -> tuple[list[dict], int]:
        """The runs of one group (``key``: field -> value, over the columns of ``fields``),
        decoded with their windows, oldest first, and how many earlier runs of the same
        variant were left out (``latest_per_variant``: only the newest run of each variant,
        chosen in SQL). A run whose value is NULL in a field of ``null_joins`` belongs to the
        group too (a run skipped before it chose a meter joins its group)."""
        where, args = filter_sql(**filters)
        clauses, key_args = [], []
        for name, column in fields.items():
            expr = self._col(column)
            if name in null_joins and key.get(name) is not None:
                clauses.append(f"({expr} = ? or {expr} is null)")
            else:
                clauses.append(f"{expr} is ?")
            key_args.append(key.get(name))
        clause = f"({where}) and " + " and ".join(clauses)
        args = args + key_args
        with self._snapshot():
            total = self.db.execute(f"select count(*) from runs where {clause}", args).fetchone()[0]
            if latest_per_variant:  # SQLite: the bare columns come from the row of max()
                ids = [r[0] for r in self.db.execute(
                    f"select id, max(started_at) from runs where {clause} group by variant", args)]
                marks = ",".join("?" * len(ids))
                runs = list(self.iter_runs(with_results=True, where=f"id in ({marks})",
                                           where_args=ids)) if ids else []
            else:
                runs = list(self.iter_runs(with_results=True, where=clause, where_args=args))
        return runs, total - len(runs)
