"""A comparison's answer in words: one line per variant of a group (reports.compare
``group_document``) against the group's reference, for the top of the HTML page.

Each line names the throughput verdict first ("faster", "slower", "no significant difference",
or why there is none), then the speedup and eta gain with their 95% intervals (the eta gain
labelled estimated when its energies are), MFU and the quality verdict.
"""

from __future__ import annotations

from reports.numbers import MISSING, band_text, estimated, first_line, pct, ratio_text, si


def _figures(r: dict) -> str:
    eta = si(r["eta_flops_per_j"], "FLOP/J")
    if r["energy_estimated"] and eta != MISSING:
        eta = band_text(eta, r["eta_low_flops_per_j"], r["eta_high_flops_per_j"], "FLOP/J")
    tps = si(r["tokens_per_s"])
    return f"{tps}{'' if tps == MISSING else ' tokens/s'}, MFU {pct(r['mfu'])}, eta {eta}"


def _quality(r: dict) -> str:
    q = r.get("quality")
    if not q:
        return "quality not checked"
    return "quality ok" if q["ok"] else f"quality FLAGGED: {q.get('reason') or 'outside tolerance'}"


def _ratio(r: dict, name: str) -> str:
    """``1.84x [1.62, 2.09]``, with ", not significant" when the interval contains 1.0."""
    value, low, high = r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"]
    if value is None or low is None or high is None:
        return ratio_text(value, low, high, r[f"{name}_significant"])
    return f"{value:.2f}x [{low:.2f}, {high:.2f}]" + ("" if r[f"{name}_significant"] else
                                                     ", not significant")


def verdict_line(r: dict, reference: str) -> dict:
    """``{"variant", "verdict", "text"}`` for one comparison row against ``reference``."""
    verdict = r["verdict"]
    if verdict == "reference":
        return {"variant": r["variant"], "verdict": verdict,
                "text": f"the reference: {_figures(r)}; {_quality(r)}"}
    if r["status"] != "ok":
        reason = first_line(r.get("reason") or "") or "no result"
        return {"variant": r["variant"], "verdict": r["status"], "text": f"{r['status']}: {reason}"}
    if verdict in ("faster", "slower"):
        head = f"{verdict} than {reference}: speedup {_ratio(r, 'speedup')}"
    elif verdict.startswith("n/a"):
        head = f"no verdict against {reference}, {verdict}"
    else:
        head = f"{verdict} in throughput from {reference}: speedup {_ratio(r, 'speedup')}"
    gain = estimated(_ratio(r, "eta_gain"), r["energy_estimated"])
    return {"variant": r["variant"], "verdict": verdict,
            "text": f"{head}; eta gain {gain}; {_figures(r)}; {_quality(r)}"}


def verdict_lines(group: dict) -> list[dict]:
    """The answer of a group: a line per row, the reference first."""
    return [verdict_line(r, group["baseline_variant"]) for r in group["rows"]]
