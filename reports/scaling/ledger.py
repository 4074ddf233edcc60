"""The eta ledger: where an eta gain between two runs of the same logical work came from
(theory.md section 5).

Per window ``eta = MFU * F_peak / P_avg`` (logical FLOP/J = logical FLOP/s per W). Between a
baseline A and a run B, in doublings:

    log2(eta_B/eta_A) = log2(F_B/F_A) + log2(MFU_B/MFU_A) - log2(P_B/P_A) + residual

``hardware``: the dense peak per device at the reference precision; ``utilisation``: logical
MFU (a faster precision, kernel or compile on the same device shows up here); ``power``:
average power per device drawn. Each run's figure is the geometric mean over its node
windows (printed beside the total, with the medians ``report`` shows and their log2 ratio) (the mean of log2), which makes the identity exact window by window and therefore
for the means: the ``consistency residual`` is what the stored eta does not explain (normally
~1e-15; a large one means a run's eta, MFU and power disagree). Intervals are Welch 95%
intervals of the difference of mean log2 values (``profiler.stats.t975``); the peak has no
spread. Figures from estimated energy (the power term, the total) are labelled estimated.
"""

from __future__ import annotations

import math
import statistics

from profiler.errors import ConfigError
from profiler.measurement import top_rows
from profiler.stats import t975

#: What makes two runs the same logical work: (label, how to read it from a run).
SAME_WORK = (
    ("model shape", lambda r: (r.get("config") or {}).get("model")),
    ("scenario", lambda r: r.get("scenario")),
    ("batch", lambda r: (r.get("config") or {}).get("batch_size")),
    ("seq", lambda r: (r.get("config") or {}).get("seq_len")),
    ("new tokens (decode)", lambda r: (r.get("config") or {}).get("new_tokens")
     if r.get("scenario") == "decode" else None),
    ("attention convention", lambda r: r.get("attention_convention")),
    ("logical FLOP/token", lambda r: (r.get("summary") or {}).get("logical_flops_per_token")),
)
#: The energy method whose power is a model, not a reading (profiler.meters.estimate).
MODELLED_METHOD = "estimated"
POWER_NOT_MEASURED = ("not measured (modelled power): both runs' energy is the CPU estimate "
                      "(a full-load power x utilisation), so the power term is the model's and "
                      "the eta gain is the speedup; measure with RAPL or a GPU meter")
#: The ledger's terms in order: key, label, whether its input is the measured energy.
TERMS = (("hardware", "hardware peak", False), ("utilisation", "utilisation (logical MFU)", False),
         ("power", "power drawn", True), ("residual", "consistency residual", True))


def differences(a: dict, b: dict) -> list[str]:
    """The fields of ``SAME_WORK`` in which two runs differ ([] for the same logical work)."""
    return [label for label, read in SAME_WORK if read(a) != read(b)]


def run_figures(run: dict) -> dict:
    """A run's per-device log2 figures over its node windows, or a ``reason`` it has none."""
    s = run.get("summary") or {}
    rows = top_rows(run.get("results") or [])
    out = {"run_id": run["id"], "variant": run.get("variant"), "device": run.get("device"),
           "precision": s.get("precision"), "windows": len(rows), "reason": None,
           "estimated": bool(s.get("energy_estimated")), "energy_method": s.get("energy_method"),
           "peak_source": s.get("peak_source"),
           "eta_median_flops_per_j": s.get("eta_flops_per_j")}
    peak, devices = s.get("peak_flops_per_s"), s.get("devices") or 1
    if run.get("status") != "ok":
        out["reason"] = f"run {run['id'][:8]} is {run.get('status')}, not ok"
    elif not peak:
        out["reason"] = (f"run {run['id'][:8]} has no dense peak ({s.get('mfu_reason') or 'no profile'}): "
                         "without F_peak eta cannot be split into peak, MFU and power")
    elif not rows or any(not all((r.get(k) or 0) > 0 for k in ("eta_flops_per_j", "mfu", "avg_power_w"))
                         for r in rows):
        out["reason"] = (f"run {run['id'][:8]} lacks a positive eta, MFU or power in its windows "
                         f"({s.get('eta_reason') or s.get('mfu_reason') or 'no windows'})")
    if out["reason"]:
        return out
    out["log2_eta"] = [math.log2(r["eta_flops_per_j"]) for r in rows]
    out["log2_mfu"] = [math.log2(r["mfu"]) for r in rows]
    out["log2_power_w"] = [math.log2(r["avg_power_w"] / devices) for r in rows]
    out["peak_flops_per_s"] = peak / devices
    out["eta_flops_per_j"] = 2 ** statistics.fmean(out["log2_eta"])
    out["mfu"] = 2 ** statistics.fmean(out["log2_mfu"])
    out["avg_power_w"] = 2 ** statistics.fmean(out["log2_power_w"])
    implied = out["mfu"] * out["peak_flops_per_s"] / out["avg_power_w"]
    out["consistency_rel_diff"] = out["eta_flops_per_j"] / implied - 1.0
    return out


def _interval(a: list[float], b: list[float]) -> tuple[float, float] | None:
    """95% Welch interval of mean(b) - mean(a); None with fewer than two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(b) - statistics.fmean(a)
    if va + vb == 0:
        return diff, diff
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1)) + (vb ** 2 / (len(b) - 1)))
    half = t975(max(1.0, df)) * math.sqrt(va + vb)
    return diff - half, diff + half


def _public(fig: dict) -> dict:
    return {k: v for k, v in fig.items() if not k.startswith("log2_")}


def ledger(baseline: dict, run: dict) -> dict:
    """The ledger of ``run`` against ``baseline`` (both stored runs with their results).

    Refused (ConfigError) when they are not the same logical work; terms None with
    ``reason`` when either cannot be decomposed (no peak, no energy, not ok)."""
    not_ok = [r for r in (baseline, run) if r.get("status") != "ok"]
    diff = [] if not_ok else differences(baseline, run)
    if diff:
        raise ConfigError(f"runs {baseline['id'][:8]} and {run['id'][:8]} are not the same logical "
                          f"work: they differ in {', '.join(diff)}; a ledger compares one model "
                          "shape, scenario and size")
    a, b = run_figures(baseline), run_figures(run)
    doc = {"baseline": _public(a), "run": _public(b), "terms": [], "total_doublings": None,
           "total_interval": None, "reason": a["reason"] or b["reason"], "notes": []}
    if doc["reason"]:
        return doc
    if a["precision"] != b["precision"]:
        doc["notes"].append(f"reference precisions differ ({a['precision']} vs {b['precision']}): "
                            "the hardware term compares peaks at different precisions")
    energy_est = a["estimated"] or b["estimated"]
    hardware = math.log2(b["peak_flops_per_s"] / a["peak_flops_per_s"])
    util = statistics.fmean(b["log2_mfu"]) - statistics.fmean(a["log2_mfu"])
    power = -(statistics.fmean(b["log2_power_w"]) - statistics.fmean(a["log2_power_w"]))
    total = statistics.fmean(b["log2_eta"]) - statistics.fmean(a["log2_eta"])
    residual = total - (hardware + util + power)
    power_ci = _interval(a["log2_power_w"], b["log2_power_w"])
    values = {"hardware": (hardware, (hardware, hardware), "a fixed peak (vendor or theoretical): no spread"),
              "utilisation": (util, _interval(a["log2_mfu"], b["log2_mfu"]), None),
              "power": (power, power_ci and (-power_ci[1], -power_ci[0]), None),
              "residual": (residual, None, "what eta = MFU * F_peak / P does not explain")}
    # Both energies modelled (the CPU estimate: a fixed full-load power x utilisation): the
    # power term shows the model, not a meter, and the eta gain is then the speedup.
    modelled = a["energy_method"] == b["energy_method"] == MODELLED_METHOD
    if modelled:
        values["power"] = (power, None, POWER_NOT_MEASURED)
    for key, label, from_energy in TERMS:
        value, ci, note = values[key]
        if key == "hardware":
            label = f"{label} ({a['precision']})"
        doc["terms"].append({"key": key, "label": label, "doublings": value,
                             "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                             "estimated": energy_est and from_energy,
                             "measured": not (modelled and key == "power"), "note": note
                             or (None if ci else "fewer than two windows: no interval")})
    doc["total_doublings"] = total
    doc["median_doublings"] = _median_doublings(a, b)
    doc["total_interval"] = _interval(a["log2_eta"], b["log2_eta"])
    doc["total_estimated"] = energy_est
    doc["eta_ratio"] = 2 ** total
    return doc


def _median_doublings(a: dict, b: dict) -> float | None:
    """log2 of the ratio of the runs' median eta (the figure ``report`` shows): beside the
    total, so the user sees both summaries and how far apart they are."""
    ma, mb = a.get("eta_median_flops_per_j"), b.get("eta_median_flops_per_j")
    if not (isinstance(ma, (int, float)) and isinstance(mb, (int, float)) and ma > 0 and mb > 0):
        return None
    return math.log2(mb / ma)


def sweep_of(store_runs: list[dict], run: dict) -> list[dict]:
    """The runs of ``run``'s sweep (``config["sweep_id"]``), oldest first; just ``run`` when it
    has no sweep id."""
    sweep = (run.get("config") or {}).get("sweep_id")
    if not sweep:
        return [run]
    members = [r for r in store_runs if (r.get("config") or {}).get("sweep_id") == sweep]
    return sorted(members, key=lambda r: r.get("started_at") or "")


def sweep_ledger(runs: list[dict]) -> dict:
    """Every run of a sweep against its reference (the first, oldest run): one ledger each, or
    the reason there is none."""
    if len(runs) < 2:
        raise ConfigError("a sweep ledger needs at least two runs in the sweep")
    reference, others = runs[0], runs[1:]
    entries = []
    for run in others:
        try:
            entries.append(ledger(reference, run))
        except ConfigError as e:
            entries.append({"run": {"run_id": run["id"], "variant": run.get("variant")},
                            "terms": [], "total_doublings": None, "reason": str(e), "notes": []})
    return {"sweep_id": (reference.get("config") or {}).get("sweep_id"),
            "reference": {"run_id": reference["id"], "variant": reference.get("variant")},
            "ledgers": entries}


def ledger_from_store(store, baseline: str | None = None, run: str | None = None,
                      sweep: str | None = None) -> dict:
    """The ledger the ledger command asks for: ``run`` against ``baseline`` (ids or prefixes),
    or, with ``sweep`` (any run of the sweep), every run of that sweep against its first.
    The document has ``kind`` "pair" or "sweep"."""
    if sweep is not None:
        if baseline or run:
            raise ConfigError("give --sweep RUN, or --baseline RUN with --run RUN, not both")
        member = store.find_run(sweep)
        runs = sweep_of(store.runs(), member)
        return {"kind": "sweep", **sweep_ledger(runs)}
    if not (baseline and run):
        raise ConfigError("give --baseline RUN and --run RUN (ids or prefixes), or --sweep RUN")
    return {"kind": "pair", **ledger(store.find_run(baseline), store.find_run(run))}
