"""The cells and footnotes of a comparison table (rows of reports.compare.comparison).

Figures show their 95% interval over windows, estimated ones their band; every ratio reads as
``1.84x [1.62, 2.09]`` or ``no significant difference [0.92, 1.31]`` (reports.numbers.ratio_text),
and the verdict column says whether a variant is faster. A reason shared by several rows is
printed once (reports.numbers.Footnotes). ``WIDE`` is every column (``--wide``, HTML), ``NARROW``
the terminal's default, fitted to its width by reports.table_fit.
"""

from __future__ import annotations

from reports.numbers import (MISSING, estimated, Footnotes, band_text, first_line, interval_text, pct,
                             ratio_text, si)
from reports.table_fit import FitColumn


def _quality(row: dict) -> tuple[str, str]:
    """(verdict, detail): ``ok`` or ``FLAGGED`` and the error figures, or n/a."""
    q = row["quality"]
    if not q:
        return MISSING, ""
    if q["kind"] == "logits":
        text = f"err {q['rel_err']:.3g}, top1 {q['top1_agreement']:.2f}" if q["rel_err"] is not None else "non-finite"
    else:
        text = f"loss dev {q['max_rel_loss_dev']:.3g}" if q["max_rel_loss_dev"] is not None else "non-finite"
    return ("ok" if q["ok"] else "FLAGGED"), text


def _quality_cell(row: dict) -> tuple[str, str]:
    verdict, text = _quality(row)
    return (text if verdict == "ok" else verdict if verdict == MISSING else f"FLAGGED: {text}"), ""


def _ratio(row: dict, name: str) -> tuple[str, str]:
    """A ratio against the reference as (figure, interval): ``1.84x`` or ``no significant
    difference`` (reports.numbers.ratio_text, split before its interval)."""
    if row["verdict"] == "reference":
        return "1 (reference)", ""
    text = ratio_text(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"],
                      row[f"{name}_significant"])
    main, bracket, rest = text.partition(" [")
    return main, (bracket.strip() + rest) if bracket else ""


def ratio_cell(row: dict, name: str) -> str:
    """A ratio against the reference on one line: figure and interval (``_ratio`` joined)."""
    return " ".join(x for x in _ratio(row, name) if x)


def _speedup_verdict(row: dict) -> tuple[str, str]:
    """The speedup with the verdict in words: ``1.52x faster``, ``no significant
    difference``, ``n/a (skipped)``; its interval below."""
    if row["verdict"] == "reference":
        return "reference", ""
    main, interval = _ratio(row, "speedup")
    if row["verdict"] in ("faster", "slower"):
        return f"{main} {row['verdict']}", interval
    return (row["verdict"] if row["verdict"].startswith("n/a") else main), interval


def _eta_gain(row: dict) -> tuple[str, str]:
    """The eta gain, labelled estimated when the energies it divides are estimates."""
    main, interval = _ratio(row, "eta_gain")
    return (main if row["verdict"] == "reference" else estimated(main, row["energy_estimated"])), interval


def _interval(low, high, fmt=si) -> str:
    return interval_text(low, high, fmt).strip()


def _tokens(r: dict) -> tuple[str, str]:
    text = si(r["tokens_per_s"])
    return text, "" if text == MISSING else _interval(r["tokens_per_s_ci_low"], r["tokens_per_s_ci_high"])


def _mfu(r: dict) -> tuple[str, str]:
    text = pct(r["mfu"])
    return text, "" if text == MISSING else _interval(r["mfu_ci_low"], r["mfu_ci_high"], pct)


def _eta(row: dict) -> tuple[str, str]:
    """eta with its interval; an estimated eta with its band (never left out)."""
    text = si(row["eta_flops_per_j"])
    if text == MISSING:
        return text, ""
    if row["energy_estimated"]:
        return band_text(text, row["eta_low_flops_per_j"], row["eta_high_flops_per_j"]), ""
    return text, _interval(row["eta_flops_per_j_ci_low"], row["eta_flops_per_j_ci_high"])


def _own_peak(row: dict) -> tuple[str, str]:
    if row["variant_precision"] and row["variant_precision"] == row["precision"]:
        return "= MFU", ""  # the variant computes in the reference precision: the same figure
    return pct(row["mfu_vs_variant_peak"]), ""


#: Every column of a comparison: header and its cell as (figure, interval). ``--wide``, the
#: HTML page and ``comparison_cells`` show these.
WIDE = (
    ("variant", lambda r: (r["variant"], "")), ("status", lambda r: (r.get("status_label", r["status"]), "")),
    ("tokens/s [95% interval]", _tokens), ("spread", lambda r: (pct(r["tokens_per_s_spread"]), "")),
    ("speedup [95% interval]", lambda r: _ratio(r, "speedup")),
    ("verdict", lambda r: (r["verdict"], "")), ("MFU", _mfu), ("MFU own peak", _own_peak),
    ("MFU ratio", lambda r: _ratio(r, "mfu_ratio")), ("eta (FLOP/J)", _eta),
    ("eta gain", _eta_gain), ("quality", _quality_cell),
)
COLUMNS = tuple(header for header, _ in WIDE)

#: The terminal's default columns, short headers, and how readily each is left out to fit
#: (reports.table_fit): the verdict rides in the speedup, status in the verdict; spread, MFU
#: against the variant's own peak and the MFU ratio are under --wide and in --json.
NARROW = (
    (FitColumn("variant"), lambda r: (r["variant"], "")),
    (FitColumn("speedup"), _speedup_verdict),
    (FitColumn("tokens/s", 3), _tokens),
    (FitColumn("MFU", 4), _mfu),
    (FitColumn("eta FLOP/J"), _eta),
    (FitColumn("eta gain", 2), _eta_gain),
    (FitColumn("quality", 1, detail="error figures"), _quality),
)


def row_cells(r: dict) -> list[str]:
    """The cells of one comparison row, in the order of ``COLUMNS``, each on one line."""
    return [" ".join(x for x in cell(r) if x) for _, cell in WIDE]


def terminal_cells(rows: list[dict], wide: bool = False) -> tuple[list[FitColumn], list[list[tuple[str, str]]]]:
    """The columns and (figure, interval) cells of the terminal table: ``NARROW`` by default,
    every column (``WIDE``) with ``wide``."""
    spec = [(FitColumn(h), cell) for h, cell in WIDE] if wide else list(NARROW)
    return [c for c, _ in spec], [[cell(r) for _, cell in spec] for r in rows]


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

