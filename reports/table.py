"""The stored runs as table rows (one per run, from its summary over the windows), and the
reasons behind every missing value."""

from __future__ import annotations

from profiler.store import process_gone
from reports.compare import ranks_text
from reports.numbers import MISSING, Footnotes, band_text, estimated, first_line, pct, si

COLUMNS = ("run", "started", "status", "workload", "variant", "device", "tokens/s", "MFU",
           "energy method", "eta (FLOP/J)", "tokens/J", "quality")
#: The terminal's default columns: (column of ``COLUMNS``, short header, how readily it is
#: left out to fit the width, reports.table_fit); energy method and tokens/J are under --wide.
NARROW = (("run", "run", 0), ("started", "started", 4), ("status", "status", 0),
          ("workload", "workload", 2), ("variant", "variant", 0), ("device", "device", 3),
          ("tokens/s", "tokens/s", 1), ("MFU", "MFU", 5), ("eta (FLOP/J)", "eta FLOP/J", 0),
          ("quality", "quality", 1))


def terminal_cells(rows: list[list[str]], wide: bool = False):
    """The columns (reports.table_fit.FitColumn) and cells of the terminal's run table from
    ``run_rows``' rows: ``NARROW`` by default, every column with ``wide``."""
    from reports.table_fit import FitColumn

    spec = [(c, c, 0) for c in COLUMNS] if wide else NARROW
    at = [COLUMNS.index(c) for c, _, _ in spec]
    return ([FitColumn(short, priority) for _, short, priority in spec],
            [[(row[i], "") for i in at] for row in rows])


def quality_text(run: dict) -> str:
    """``ok``, ``FLAGGED`` or n/a: a variant outside tolerance is flagged wherever it is shown."""
    if run.get("quality_ok") is None:
        return MISSING
    return "ok" if run["quality_ok"] else "FLAGGED"


def latency_text(value_s: float | None) -> str:
    """A latency in ms (``0.000517`` -> ``0.517 ms``), or n/a."""
    return MISSING if value_s is None else f"{value_s * 1e3:.3g} ms"


def decode_latency_text(s: dict) -> str:
    """A decode run's latency: time to first token and per-token p50/p90/p99 (medians over
    the windows)."""
    return (f"decode latency: first token {latency_text(s.get('first_token_s'))}, per token "
            f"p50 {latency_text(s.get('token_latency_p50_s'))}, p90 "
            f"{latency_text(s.get('token_latency_p90_s'))}, p99 "
            f"{latency_text(s.get('token_latency_p99_s'))}")


def run_rows(runs: list[dict]) -> tuple[list[list[str]], list[str]]:
    """One row per run and the footnotes explaining missing values, failures, noise and flags
    (a reason shared by several runs is noted once, naming them all)."""
    rows, notes = [], Footnotes()
    for run in runs:
        short = run["id"][:8]
        s = run.get("summary") or {}
        est = s.get("energy_estimated")
        cfg = run.get("config") or {}
        sizes = (f"{cfg['batch_size']}x{cfg['seq_len']}"
                 if cfg.get("batch_size") and cfg.get("seq_len") else None)
        ranks = ranks_text(run)
        workload = " ".join(x for x in (run.get("preset"), run.get("scenario"), sizes,
                                        f"[{ranks}]" if ranks else None,
                                        f"attn={run.get('attention_convention')}") if x)
        status = run["status"]
        if process_gone(run):
            status = "running (process gone)"
            notes.add(short, f"its process {run['pid']} on {run['host']} is gone: it died "
                             "without recording an ending")
        rows.append([
            short, (run.get("started_at") or "")[:16].replace("T", " "), status,
            workload, run.get("variant") or "", run.get("device") or "",
            si(s.get("tokens_per_s")), pct(s.get("mfu")), s.get("energy_method") or MISSING,
            (band_text(si(s.get("eta_flops_per_j")), s.get("eta_low_flops_per_j"),
                       s.get("eta_high_flops_per_j")) if est else si(s.get("eta_flops_per_j"))),
            estimated(si(s.get("tokens_per_j")), est), quality_text(run),
        ])
        if run.get("unreadable"):
            rows[-1][2] = f"{status} (unreadable)"
            notes.add(short, f"unreadable: {run['unreadable']}")
        if run.get("error"):
            notes.add(short, f"{run['status']}: {first_line(run['error'])}")
        if run["status"] != "ok":
            continue
        for key, what in (("mfu", "MFU"), ("eta_flops_per_j", "eta")):
            reason = s.get("mfu_reason" if key == "mfu" else "eta_reason")
            if s.get(key) is None and reason:
                notes.add(short, f"{what} n/a: {reason}")
        if run.get("scenario") == "decode" and s.get("token_latency_p50_s") is not None:
            notes.add(short, decode_latency_text(s))
        for key in ("noise_note", "peak_note"):
            if s.get(key):
                notes.add(short, s[key])
        if run.get("quality_ok") is False:
            notes.add(short, f"quality outside tolerance: {s['quality']['reason']}")
        if s.get("flags"):
            from profiler.measurement import flag_notes

            for note in flag_notes(s["flags"]):
                notes.add(short, f"flag {note}")
    return rows, notes.lines()
