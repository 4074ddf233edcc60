"""The history document and the landmark ledger (reports.scaling.history) as lines of text."""

from __future__ import annotations

from reports.numbers import MISSING, estimated, si


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def _rate(fit: dict | None, reason: str | None) -> str:
    if fit is None:
        return f"{MISSING} ({reason})"
    ci = (f"95% interval [{fit['r_low']:.3f}, {fit['r_high']:.3f}]" if fit["r_low"] is not None
          else f"no interval ({fit['interval_reason']})")
    return f"{fit['r_per_year']:.3f} doublings/year, {ci}, over {fit['n']} points"


def history_lines(doc: dict) -> list[str]:
    """The landmark table, the realised and hardware rates, the split, the stored runs."""
    lines = [f"history: {doc['what']}",
             f"  eta basis: hours x TDP (a lower bound on each run's board-level eta); share = "
             "eta / (peak / TDP) = MFU over every accelerator-hour",
             f"  {'run':<24}{'date':<12}{'accelerator':<24}{'prec':<6}{'C FLOP':>10}"
             f"{'acc-hours':>11}{'eta FLOP/J':>19}{'ceiling':>14}{'share':>8}"]
    for r in doc["landmarks"]:
        eta = r.get("eta_flops_per_j")
        lines.append(f"  {r['id']:<24}{r['date']:<12}{r['accelerator'][:23]:<24}{r['precision']:<6}"
                     f"{r['logical_compute_flop']:>10.3g}{r['accelerator_hours']:>11.3g}"
                     f"{('>= ' + si(eta, 'FLOP/J')) if eta else MISSING:>19}"
                     f"{si(r['eta_ceiling_flops_per_j'], 'FLOP/J') if r.get('eta_ceiling_flops_per_j') else MISSING:>14}"
                     f"{_pct(r.get('share_of_ceiling')):>8}")
    for r in doc["landmarks"]:
        others = [b for b in r["bases"] if b["bound"] != "lower"]
        for b in others:
            lines.append(f"    {r['id']}: {b['basis']}: {b['energy_mwh']:.4g} MWh -> "
                         f"{si(b['eta_flops_per_j'], 'FLOP/J')} ({b['note']})")
        if r.get("eta_flops_per_j") and r["band"]["high"] is None and not others:
            lines.append(f"    {r['id']}: {r['band']['high_reason']}")
        if r.get("unverified"):
            lines.append(f"    {r['id']}: not re-checked in the source text: {', '.join(r['unverified'])}")
    lines += [f"  left out: {x['id']} ({x['reason']})" for x in doc["left_out"]]
    lines.append(f"realised rate r: {_rate(doc['realised_fit'], doc['realised_fit_reason'])}")
    lines.append(f"hardware rate ({doc['hardware_precision']} peak per watt at TDP over the device "
                 f"profiles): {_rate(doc['hardware_fit'], doc['hardware_fit_reason'])}")
    split = doc.get("split")
    if split:
        lines.append(f"  split of the realised rate: ceilings of the runs' own boards "
                     f"{split['ceiling_r_per_year']:+.3f}/yr + realised share "
                     f"{split['share_r_per_year']:+.3f}/yr")
    for p in doc.get("stored", []):
        lines.append(f"  your {p['label']} on {p['date']}: "
                     f"{estimated(si(p['eta_flops_per_j'], 'FLOP/J'), p['estimated'])}, share "
                     f"{_pct(p['share_of_ceiling'])}" + (f" ({p['ceiling_reason']})" if p["ceiling_reason"] else ""))
    if doc.get("stored_reason"):
        lines.append(f"  your runs: {MISSING} ({doc['stored_reason']})")
    return lines


def _signed(x: float | None) -> str:
    return MISSING if x is None else f"{x:+.3f}"


def landmark_ledger_lines(doc: dict) -> list[str]:
    """The ledger between two points: hardware, share and total, with the band."""
    a, b = doc["from"], doc["to"]
    est = doc["estimated"]
    lines = [f"ledger: {b['label']} ({b['device']}, {b['precision']}) against {a['label']} "
             f"({a['device']}, {a['precision']})",
             f"  eta {estimated(si(a['eta_flops_per_j'], 'FLOP/J'), a['estimated'])} [{a['basis']}] -> "
             f"{estimated(si(b['eta_flops_per_j'], 'FLOP/J'), b['estimated'])} [{b['basis']}]",
             f"  {'term':<42}{'doublings':>10}  band"]
    for t in doc["terms"]:
        band = (f"[{_signed(t['band_low'])}, {_signed(t['band_high'])}]"
                if t["band_low"] is not None or t["band_high"] is not None else "(no band)")
        lines.append(f"  {t['label']:<42}{_signed(t['doublings']):>10}  {band} ({t['note']})")
    low, high = doc["total_band"]
    band = f"[{_signed(low)}, {_signed(high)}]" if low is not None or high is not None else "(no band)"
    lines.append(f"  {'total log2(eta_B/eta_A)':<42}{_signed(doc['total_doublings']):>10}  "
                 f"{band} = x{doc['eta_ratio']:.3g} eta"
                 + (" (estimated)" if est else ""))
    lines.append(f"  terms sum to the total (residual {doc['sum_residual']:.1e})")
    lines.append(f"  band: {doc['band_note']}")
    lines += [f"  note: {n}" for n in doc["notes"]]
    return lines
