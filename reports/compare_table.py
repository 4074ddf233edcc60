"""The cells and footnotes of a comparison table (rows of reports.compare.comparison).

Figures show their 95% interval over windows, estimated ones their band; every ratio reads as
``1.84x [1.62, 2.09]`` or ``no significant difference [0.92, 1.31]`` (reports.numbers.ratio_text),
and the verdict column says whether a variant is faster. A reason shared by several rows is
printed once (reports.numbers.Footnotes).
"""

from __future__ import annotations

from reports.numbers import (MISSING, estimated, Footnotes, band_text, first_line, interval_text, pct,
                             ratio_text, si)

COLUMNS = ("variant", "status", "tokens/s [95% interval]", "spread", "speedup [95% interval]",
           "verdict", "MFU", "MFU own peak", "MFU ratio", "eta (FLOP/J)", "eta gain", "quality")


def _quality_cell(row: dict) -> str:
    q = row["quality"]
    if not q:
        return MISSING
    if q["kind"] == "logits":
        text = f"err {q['rel_err']:.3g}, top1 {q['top1_agreement']:.2f}" if q["rel_err"] is not None else "non-finite"
    else:
        text = f"loss dev {q['max_rel_loss_dev']:.3g}" if q["max_rel_loss_dev"] is not None else "non-finite"
    return text if q["ok"] else f"FLAGGED: {text}"


def _ratio_cell(row: dict, name: str) -> str:
    if row["verdict"] == "reference":
        return "1 (reference)"
    return ratio_text(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"],
                      row[f"{name}_significant"])


def _eta_gain_cell(row: dict) -> str:
    """The eta gain, labelled estimated when the energies it divides are estimates."""
    text = _ratio_cell(row, "eta_gain")
    return text if row["verdict"] == "reference" else estimated(text, row["energy_estimated"])


def _with_interval(text: str, low, high, fmt=si) -> str:
    return text if text == MISSING else text + interval_text(low, high, fmt)


def _eta_cell(row: dict) -> str:
    text = si(row["eta_flops_per_j"])
    if row["energy_estimated"]:
        return band_text(text, row["eta_low_flops_per_j"], row["eta_high_flops_per_j"])
    return _with_interval(text, row["eta_flops_per_j_ci_low"], row["eta_flops_per_j_ci_high"])


def _own_peak_cell(row: dict) -> str:
    if row["variant_precision"] and row["variant_precision"] == row["precision"]:
        return "= MFU"  # the variant computes in the reference precision: the same figure
    return pct(row["mfu_vs_variant_peak"])


def row_cells(r: dict) -> list[str]:
    """The cells of one comparison row, in the order of ``COLUMNS``."""
    return [
        r["variant"], r.get("status_label", r["status"]),
        _with_interval(si(r["tokens_per_s"]), r["tokens_per_s_ci_low"], r["tokens_per_s_ci_high"]),
        pct(r["tokens_per_s_spread"]), _ratio_cell(r, "speedup"), r["verdict"],
        _with_interval(pct(r["mfu"]), r["mfu_ci_low"], r["mfu_ci_high"], pct),
        _own_peak_cell(r), _ratio_cell(r, "mfu_ratio"),
        _eta_cell(r) if r["eta_flops_per_j"] is not None else MISSING,
        _eta_gain_cell(r), _quality_cell(r),
    ]


def _row_notes(r: dict, notes: Footnotes) -> None:
    v = r["variant"]
    if r["reason"]:
        notes.add(v, f"{r['status']}: {first_line(r['reason'])}")
    if r["status"] != "ok":
        return
    if r["noise_note"]:
        notes.add(v, f"noisy: {r['noise_note']}")
    if r["peak_note"]:
        notes.add(v, r["peak_note"])
    if r["quality"] and not r["quality"]["ok"]:
        notes.add(v, f"quality outside tolerance: {r['quality']['reason']}")
    if r["unconverted_layers"]:
        notes.add(v, f"{len(r['unconverted_layers'])} linear layer(s) left unconverted: "
                     f"{', '.join(r['unconverted_layers'][:6])}"
                     + (" ..." if len(r["unconverted_layers"]) > 6 else ""))
    for key, what in (("mfu", "MFU"), ("eta_flops_per_j", "eta")):
        if r[key] is None:
            reason = r["mfu_reason" if key == "mfu" else "eta_reason"]
            notes.add(v, f"{what} n/a: {reason or 'not measured in every window'}")
    if r["mfu_vs_variant_peak"] is None and r["variant_peak_reason"] and \
            r["variant_precision"] != r["precision"]:
        notes.add(v, f"MFU vs own ({r['variant_precision']}) peak n/a: {r['variant_peak_reason']}")
    if r["moe_impl"]:
        notes.add(v, "a different (MoE) model, credited with its own logical FLOPs by active "
                     "parameters: compare its MFU and eta, not its tokens/s "
                     f"(experts: {r['moe_impl']})")
    if r["compile_time_s"] is not None:
        notes.add(v, f"compile time {r['compile_time_s']:.1f} s (excluded)")


def comparison_cells(rows: list[dict]) -> tuple[list[list[str]], list[str]]:
    """Table cells and footnotes (what the columns mean, skip and failure reasons, noise,
    quality flags, unconverted layers), each footnote once."""
    notes = Footnotes()
    for r in rows:
        _row_notes(r, notes)
    cells = [row_cells(r) for r in rows]
    legend = ["figures: medians over windows, [95% interval of the geometric mean]; ratios: of the means "
              "over windows against the reference, [95% interval]; a ratio whose interval "
              "contains 1.0 is no significant difference"]
    if any(r["energy_estimated"] for r in rows):
        legend.append("eta (estimated): from an energy model, with the band it may lie in")
    return cells, legend + notes.lines()

