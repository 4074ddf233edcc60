"""Like with like: the groups of runs that may be compared, and runs against a reference.

Every comparison (the sweep table of ``etameter bench``, ``etameter compare``, the plots and
the HTML report) puts side by side only runs of one group (:func:`group_fields`): the same
preset (or model shape), scenario, batch, sequence, number of processes (``--nproc`` ranks: a
node run is never compared with a single process as if it were faster), device, attention
convention and meter, and by default the same sweep (the runs of one ``etameter bench``). Ratios against the
reference (speedup, MFU ratio, eta gain) come from the windows of both runs, with a 95%
interval (profiler.stats.ratio_interval); one whose interval contains 1.0 is "no significant
difference". Table cells are built in reports.compare_table.
"""

from __future__ import annotations

import statistics

from profiler.errors import ConfigError
from reports.caveats import differences, status_label, with_caveats
from profiler.measurement import top_rows
from profiler.stats import NO_DIFFERENCE, ratio_interval, ratio_verdict

#: The fields of a group, in the order titles name them.
GROUP_FIELDS = ("model", "scenario", "batch_size", "seq_len", "ranks", "device",
                "attention_convention", "meter", "sweep")
#: Ratios against the reference: (name, the window column it divides).
RATIOS = (("speedup", "tokens_per_s"), ("mfu_ratio", "mfu"), ("eta_gain", "eta_flops_per_j"))


def sweep_of(run: dict) -> str:
    """The sweep a run belongs to: the ``sweep_id`` the runner stored, or the run itself."""
    return (run.get("config") or {}).get("sweep_id") or f"run {run['id'][:8]}"


def meter_of(run: dict) -> str | None:
    """The meter method of a run ("none" when it had none); None when it never chose one (a
    run skipped before measuring: it joins whichever group matches it otherwise)."""
    cfg = run.get("config") or {}
    if "meter" in cfg:
        return (cfg["meter"] or {}).get("method") or "none"
    return (run.get("summary") or {}).get("energy_method")


def ranks_of(run: dict) -> int:
    """The processes a run ran on (``--nproc``; 1 for a single process)."""
    return int((run.get("config") or {}).get("world_size") or 1)


def ranks_text(run: dict) -> str | None:
    """"2 ranks on 1 device" for a node run (from its node rows), None for one process."""
    ranks = ranks_of(run)
    if ranks <= 1:
        return None
    devices = (run.get("summary") or {}).get("devices")
    on = "" if devices is None else (
        f" on {devices} device" + ("s" if devices != 1 else "")
        + (" (shared)" if devices < ranks else ""))
    return f"{ranks} ranks{on}"


def _model(run: dict) -> str | None:
    if run.get("preset"):
        return run["preset"]
    model = (run.get("config") or {}).get("model") or {}
    return ("L{n_layers} d{d_model} H{n_heads} V{vocab_size}".format_map(
        {k: model.get(k) for k in ("n_layers", "d_model", "n_heads", "vocab_size")})
        if model else None)


def group_fields(run: dict, across_sweeps: bool = False) -> dict:
    """What a run must share with another to be compared with it (``GROUP_FIELDS``); the
    sweep is None ``across_sweeps``."""
    cfg = run.get("config") or {}
    return {"model": _model(run), "scenario": run.get("scenario"),
            "batch_size": cfg.get("batch_size"), "seq_len": cfg.get("seq_len"),
            "ranks": ranks_of(run), "device": run.get("device_key") or run.get("device"),
            "attention_convention": run.get("attention_convention"), "meter": meter_of(run),
            "sweep": None if across_sweeps else sweep_of(run)}


def group_key(run: dict, across_sweeps: bool = False) -> tuple:
    """``group_fields`` as a hashable key, in the order of ``GROUP_FIELDS``."""
    fields = group_fields(run, across_sweeps)
    return tuple(fields[f] for f in GROUP_FIELDS)


def groups(runs: list[dict], across_sweeps: bool = False) -> dict[tuple, list[dict]]:
    """Runs by group key, oldest first within a group. A run with no meter recorded (skipped
    before measuring) joins every group it matches on the other fields, or its own."""
    meter_at = GROUP_FIELDS.index("meter")
    out: dict[tuple, list[dict]] = {}
    unmetered = []
    for r in runs:
        key = group_key(r, across_sweeps)
        if key[meter_at] is None:
            unmetered.append((key, r))
        else:
            out.setdefault(key, []).append(r)
    for key, r in unmetered:
        rest = key[:meter_at] + key[meter_at + 1:]
        homes = [k for k in out if k[:meter_at] + k[meter_at + 1:] == rest] or [key]
        for home in homes:
            out.setdefault(home, []).append(r)
    order = {id(r): i for i, r in enumerate(runs)}
    return {k: sorted(v, key=lambda r: order[id(r)]) for k, v in out.items()}


def group_title(key: tuple, device_name: str | None = None) -> str:
    """The title naming a group: workload, sizes, device, convention, meter and sweep."""
    g = dict(zip(GROUP_FIELDS, key))
    device = g["device"] if device_name in (None, g["device"]) else f"{device_name} [{g['device']}]"
    sweep = "across sweeps" if g["sweep"] is None else \
        (g["sweep"] if " " in str(g["sweep"]) else f"sweep {g['sweep'][:8]}")
    ranks = f", {g['ranks']} ranks (per rank)" if (g.get("ranks") or 1) > 1 else ""
    return (f"{g['scenario']} on {g['model']}, batch {g['batch_size']} x seq {g['seq_len']}{ranks}, "
            f"{device}, attention {g['attention_convention']}, meter {g['meter'] or 'n/a'}, "
            f"{sweep}")


def check_one_group(runs: list[dict]) -> None:
    """Raise ConfigError, naming the fields that differ, unless ``runs`` (named by the user)
    are all of one group (the sweep aside)."""
    fields = [group_fields(r, across_sweeps=True) for r in runs]
    differ = [f for f in GROUP_FIELDS
              if len({x[f] for x in fields if not (f == "meter" and x[f] is None)}) > 1]
    if differ:
        detail = "; ".join(f"{f}: " + ", ".join(sorted({str(x[f]) for x in fields})) for f in differ)
        raise ConfigError(f"the named runs are not comparable: they differ in {detail}")


def _latest_notes(dropped: int, across_sweeps: bool) -> list[str]:
    where = "runs from several sweeps (--across-sweeps)" if across_sweeps else "within the sweep"
    return [f"{where}: the latest run of each variant; {dropped} earlier run(s) of the same "
            "variant not shown"] if dropped else []


def _latest_per_variant(members: list[dict]) -> tuple[list[dict], int]:
    latest: dict[str, dict] = {}
    for r in members:  # oldest first: the last one of each variant wins
        latest[r["variant"]] = r
    return list(latest.values()), len(members) - len(latest)


def compare_groups(runs: list[dict], baseline: str | None = None, *,
                   across_sweeps: bool = False, named: bool = False) -> list[dict]:
    """The comparisons of ``etameter compare``: in each group with a run of ``baseline``, every
    run against it (the latest run per variant: within a sweep, or ``across_sweeps`` saying
    so in the notes). ``named``: the user named ``runs``; they must form one group, and the
    reference is the first of them (or the first of ``baseline``).

    Raises ConfigError when the named runs differ, or no group has the baseline and another run.
    """
    if named:
        check_one_group(runs)
        ref = next((r for r in runs if r["variant"] == baseline), None) if baseline else runs[0]
        if ref is None:
            raise ConfigError(f"none of the named runs is of baseline variant {baseline!r}")
        key = group_key(ref, across_sweeps=True)[:-1] + ("named runs",)
        return [group_document(key, [ref] + [r for r in runs if r is not ref], ref, [])]
    out = []
    for key, members in groups(runs, across_sweeps).items():
        latest, dropped = _latest_per_variant(members)
        ref = next((r for r in latest if r["variant"] == baseline), None)
        if ref is None or len(latest) < 2:
            continue
        notes = _latest_notes(dropped, across_sweeps)
        out.append(group_document(key, [ref] + [r for r in latest if r is not ref], ref, notes))
    if not out:
        variants = sorted({r["variant"] for r in runs})
        raise ConfigError(
            f"no group has a run of baseline variant {baseline!r} and another run to compare "
            f"(variants selected: {', '.join(variants) or 'none'}); runs compare within one "
            "sweep: use --across-sweeps, or name the runs with --run ID")
    return out


def sweep_groups(runs: list[dict]) -> list[dict]:
    """The runs of one ``etameter bench`` sweep by group (one group, unless the variants ended
    up with different meters), each against the sweep's reference variant (its first run)."""
    reference = runs[0]["variant"]
    out = []
    for key, members in groups(runs).items():
        ref = next((r for r in members if r["variant"] == reference), members[0])
        out.append(group_document(key, [ref] + [r for r in members if r is not ref], ref, []))
    return out


def group_documents(runs: list[dict], across_sweeps: bool = False,
                    min_runs: int = 1) -> list[dict]:
    """Every group of ``runs`` with at least ``min_runs`` runs, each against its first run (in
    a sweep, the reference variant); ``across_sweeps``, the latest run of each variant,
    saying so in the group's notes."""
    out = []
    for key, members in groups(runs, across_sweeps).items():
        dropped = 0
        if across_sweeps:
            members, dropped = _latest_per_variant(members)
        notes = _latest_notes(dropped, across_sweeps)
        if len(members) >= min_runs:
            out.append(group_document(key, members, members[0], notes))
    return out


def group_document(key: tuple, members: list[dict], ref: dict, notes: list[str]) -> dict:
    """A group as plain data: its fields, title, reference, notes and comparison rows."""
    return {**dict(zip(GROUP_FIELDS, key)), "title": group_title(key, ref.get("device")),
            "baseline_run": ref["id"], "baseline_variant": ref["variant"], "notes": notes,
            "rows": comparison(members, ref)}


def window_values(run: dict, key: str) -> list[float]:
    """``key`` of each node-level window of ``run`` (cluster rows across nodes; rank and per-host
    rows left out); empty
    when any window lacks it, as the run's summary does, so a ratio never rests on the
    windows that happened to be measured."""
    values = [r.get(key) for r in top_rows(run.get("results") or [])]
    return [] if None in values else values


def _ratio_fields(name: str, key: str, run: dict, ref: dict, ref_ok: bool) -> dict:
    """``name`` (a ratio of means over windows), its interval and whether it is significant;
    the ratio of the medians, without an interval, when a side has fewer than two windows."""
    if run is ref:
        return {name: 1.0, f"{name}_ci_low": None, f"{name}_ci_high": None,
                f"{name}_significant": None}
    a, b = window_values(run, key), window_values(ref, key)
    ci = ratio_interval(a, b) if ref_ok and run["status"] == "ok" else None
    if ci is not None:
        return {name: ci.value, f"{name}_ci_low": ci.low, f"{name}_ci_high": ci.high,
                f"{name}_significant": not ci.contains(1.0)}
    value = (statistics.median(a) / statistics.median(b)
             if ref_ok and a and b and statistics.median(b) else None)
    return {name: value, f"{name}_ci_low": None, f"{name}_ci_high": None,
            f"{name}_significant": None}


def _verdict(run: dict, ref: dict, ref_ok: bool) -> str:
    if run is ref:
        return "reference"
    if run["status"] != "ok":
        return f"n/a ({run['status']})"
    if not ref_ok:
        return f"n/a (the reference {ref['variant']} is {ref['status']})"
    ci = ratio_interval(window_values(run, "tokens_per_s"), window_values(ref, "tokens_per_s"))
    if ci is None:
        return "n/a (fewer than two windows on a side: no interval)"
    return ratio_verdict(ci, "faster", "slower") or NO_DIFFERENCE


def comparison(runs: list[dict], reference: dict | None = None) -> list[dict]:
    """One row per run, each against ``reference`` (default: the first run): its figures with
    their intervals and bands, and each ratio of ``RATIOS`` with its interval, whether it is
    significant, and the throughput verdict ("faster", "slower", "no significant difference",
    or "n/a (reason)")."""
    reference = reference or (runs[0] if runs else None)
    ref_ok = reference is not None and reference["status"] == "ok"
    rows = []
    for run in runs:
        s = run.get("summary") or {}
        ok = run["status"] == "ok"
        info = s.get("variant_info") or {}
        row = {
            "run_id": run["id"], "variant": run["variant"], "status": run["status"],
            "reason": run.get("error") if not ok else None,
            "windows": len(window_values(run, "tokens_per_s")),
            **{k: s.get(k) for k in (
                "tokens_per_s", "tokens_per_s_ci_low", "tokens_per_s_ci_high",
                "tokens_per_s_spread", "noise_note", "mfu", "mfu_ci_low", "mfu_ci_high",
                "mfu_reason", "precision", "variant_precision", "mfu_vs_variant_peak",
                "variant_peak_reason", "peak_note", "eta_flops_per_j", "eta_flops_per_j_ci_low",
                "eta_flops_per_j_ci_high", "eta_low_flops_per_j", "eta_high_flops_per_j",
                "eta_reason", "energy_method", "energy_estimated", "quality", "compile_time_s")},
            "quality_ok": run.get("quality_ok"),
            "unconverted_layers": info.get("unconverted_layers"), "moe_impl": info.get("moe_impl"),
            "flops_notes": s.get("flops_notes") or [],
            "attention_convention": run.get("attention_convention"),
        }
        for name, key in RATIOS:
            row.update(_ratio_fields(name, key, run, reference, ref_ok))
        row["verdict"] = with_caveats(_verdict(run, reference, ref_ok), run, reference)
        row["status_label"] = status_label(run)
        row["differences"] = differences(run, reference) if run is not reference else []
        rows.append(row)
    return rows
