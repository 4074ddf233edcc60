"""Variants against a reference run: speedup, MFU, eta and eta gain, quality, skip reasons;
and the groups of ``etameter compare`` (latest run per variant against a baseline)."""

from __future__ import annotations

from profiler.errors import ConfigError
from reports.numbers import MISSING, estimated, first_line, pct, si


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def groups(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Runs that compare directly: same preset, scenario, device, batch, seq and convention."""
    out: dict[tuple, list[dict]] = {}
    for r in runs:
        cfg = r.get("config") or {}
        key = (r.get("preset"), r.get("scenario"), r.get("device_key") or r.get("device"),
               cfg.get("batch_size"), cfg.get("seq_len"), r.get("attention_convention"))
        out.setdefault(key, []).append(r)
    return out


def compare_groups(runs: list[dict], baseline: str) -> list[dict]:
    """Each group of ``groups(runs)`` that has a run of ``baseline``: the latest run of every
    variant there against the latest baseline run, baseline first.

    Raises ConfigError when no group has a baseline run.
    """
    out = []
    for key, members in groups(runs).items():
        latest: dict[str, dict] = {}
        for r in members:  # oldest first: the last one of each variant wins
            latest[r["variant"]] = r
        if baseline not in latest:
            continue
        ordered = [latest[baseline]] + [r for v, r in latest.items() if v != baseline]
        preset, scenario, device, batch, seq, convention = key
        out.append({"preset": preset, "scenario": scenario, "device": device,
                    "batch_size": batch, "seq_len": seq, "attention_convention": convention,
                    "baseline_run": latest[baseline]["id"], "rows": comparison(ordered)})
    if not out:
        variants = sorted({r["variant"] for r in runs})
        raise ConfigError(f"no runs of baseline variant {baseline!r} among the selected runs "
                          f"(variants there: {', '.join(variants) or 'none'})")
    return out


def group_title(group: dict, baseline: str) -> str:
    """The title of one group of ``compare_groups``."""
    return (f"{group['scenario']} on {group['preset']} ({group['batch_size']}x"
            f"{group['seq_len']}, {group['device']}), against {baseline}")


def comparison(runs: list[dict], reference: dict | None = None) -> list[dict]:
    """One row per run, each against ``reference`` (default: the first run)."""
    reference = reference or (runs[0] if runs else None)
    ref = (reference or {}).get("summary") or {}
    ref_ok = reference is not None and reference["status"] == "ok"
    rows = []
    for run in runs:
        s = run.get("summary") or {}
        quality = s.get("quality")
        ok = run["status"] == "ok"
        rows.append({
            "run_id": run["id"], "variant": run["variant"], "status": run["status"],
            "reason": run.get("error") if not ok else None,
            "tokens_per_s": s.get("tokens_per_s"), "tokens_per_s_spread": s.get("tokens_per_s_spread"),
            "speedup": _ratio(s.get("tokens_per_s"), ref.get("tokens_per_s")) if ref_ok else None,
            "mfu": s.get("mfu"), "mfu_reason": s.get("mfu_reason"),
            "variant_precision": s.get("variant_precision"),
            "mfu_vs_variant_peak": s.get("mfu_vs_variant_peak"),
            "eta_flops_per_j": s.get("eta_flops_per_j"),
            "eta_gain": _ratio(s.get("eta_flops_per_j"), ref.get("eta_flops_per_j")) if ref_ok else None,
            "energy_method": s.get("energy_method"), "energy_estimated": s.get("energy_estimated"),
            "quality_ok": run.get("quality_ok"), "quality": quality,
            "compile_time_s": s.get("compile_time_s"),
            "unconverted_layers": (s.get("variant_info") or {}).get("unconverted_layers"),
            "moe_impl": (s.get("variant_info") or {}).get("moe_impl"),
            "variant_peak_reason": s.get("variant_peak_reason"),
            "flops_notes": s.get("flops_notes") or [],
            "attention_convention": run.get("attention_convention"),
        })
    return rows


COLUMNS = ("variant", "status", "tokens/s", "speedup", "MFU", "MFU own peak", "eta (FLOP/J)",
           "eta gain", "quality")


def _quality_cell(row: dict) -> str:
    q = row["quality"]
    if not q:
        return MISSING
    if q["kind"] == "logits":
        text = f"err {q['rel_err']:.3g}, top1 {q['top1_agreement']:.2f}" if q["rel_err"] is not None else "non-finite"
    else:
        text = f"loss dev {q['max_rel_loss_dev']:.3g}" if q["max_rel_loss_dev"] is not None else "non-finite"
    return text if q["ok"] else f"FLAGGED: {text}"


def comparison_cells(rows: list[dict]) -> tuple[list[list[str]], list[str]]:
    """Table cells and footnotes (skip and failure reasons, quality flags, unconverted layers)."""
    cells, notes = [], []
    for r in rows:
        est = r["energy_estimated"]
        cells.append([
            r["variant"], r["status"], si(r["tokens_per_s"]),
            f"{r['speedup']:.2f}x" if r["speedup"] is not None else MISSING,
            pct(r["mfu"]), pct(r["mfu_vs_variant_peak"]),
            estimated(si(r["eta_flops_per_j"]), est),
            f"{r['eta_gain']:.2f}x" if r["eta_gain"] is not None else MISSING,
            _quality_cell(r),
        ])
        if r["reason"]:
            notes.append(f"{r['variant']}: {r['status']}: {first_line(r['reason'])}")
        if r["status"] != "ok":
            continue
        if r["quality"] and not r["quality"]["ok"]:
            notes.append(f"{r['variant']}: quality outside tolerance: {r['quality']['reason']}")
        if r["unconverted_layers"]:
            notes.append(f"{r['variant']}: {len(r['unconverted_layers'])} linear layer(s) left "
                         f"unconverted: {', '.join(r['unconverted_layers'][:6])}"
                         + (" ..." if len(r["unconverted_layers"]) > 6 else ""))
        if r["mfu"] is None and r["mfu_reason"] and r["status"] == "ok":
            notes.append(f"{r['variant']}: MFU n/a: {r['mfu_reason']}")
        if r["mfu_vs_variant_peak"] is None and r["variant_peak_reason"]:
            notes.append(f"{r['variant']}: MFU vs own ({r['variant_precision']}) peak n/a: "
                         f"{r['variant_peak_reason']}")
        if r["moe_impl"]:
            notes.append(f"{r['variant']}: a different (MoE) model, credited with its own logical "
                         f"FLOPs by active parameters: compare its MFU and eta, not its tokens/s "
                         f"(experts: {r['moe_impl']})")
        if r["compile_time_s"] is not None:
            notes.append(f"{r['variant']}: compile time {r['compile_time_s']:.1f} s (excluded)")
    return cells, notes
