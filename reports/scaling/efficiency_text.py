"""The eta ledger (reports.scaling.ledger) and the hardware frontier
(reports.scaling.frontier) as lines of text for the terminal."""

from __future__ import annotations

from reports.numbers import MISSING, estimated, si


def _signed(x: float | None, digits: int = 3) -> str:
    return MISSING if x is None else f"{x:+.{digits}f}"


def _run_line(fig: dict) -> str:
    return f"run {fig['run_id'][:8]} ({fig.get('variant')}, {fig.get('device')})"


def _eta(value: float | None, est: bool) -> str:
    """An eta with 5 significant digits: enough that log2 of two shown figures is the total
    to 1e-4 doublings."""
    return estimated(si(value, "FLOP/J", digits=5), est)


def ledger_lines(doc: dict) -> list[str]:
    """One ledger: the two runs, then each term in doublings with its interval, and the total."""
    a, b = doc.get("baseline") or {}, doc["run"]
    lines = [f"{_run_line(b)} against baseline {_run_line(a)}" if a else _run_line(b)]
    if doc.get("reason"):
        return lines + [f"  no ledger: {doc['reason']}"]
    est = doc["total_estimated"]
    lines.append(f"  eta {_eta(a['eta_flops_per_j'], est)} -> {_eta(b['eta_flops_per_j'], est)} "
                 f"(geometric means over {a['windows']} and {b['windows']} windows: the "
                 "total is log2 of their ratio)")
    if doc.get("median_doublings") is not None:
        lines.append(f"  report's medians {_eta(a['eta_median_flops_per_j'], est)} -> "
                     f"{_eta(b['eta_median_flops_per_j'], est)}: "
                     f"{_signed(doc['median_doublings'])} doublings")
    lines.append(f"  {'term':<34}{'doublings':>10}  95% interval")
    for term in doc["terms"]:
        ci = (f"[{_signed(term['ci_low'])}, {_signed(term['ci_high'])}]"
              if term["ci_low"] is not None else "")
        tail = " ".join(x for x in (ci, f"({term['note']})" if term["note"] else "",
                                    "(estimated)" if term["estimated"] else "") if x)
        if term.get("measured") is False:  # a modelled power: no figure that looks measured
            lines.append(f"  {term['label']:<34}{'n/a':>10}  ({term['note']})")
            continue
        lines.append(f"  {term['label']:<34}{_signed(term['doublings']):>10}  {tail}")
    ci = doc["total_interval"]
    tail = f"[{_signed(ci[0])}, {_signed(ci[1])}]" if ci else "(fewer than two windows: no interval)"
    lines.append(f"  {'total log2(eta_B/eta_A)':<34}{_signed(doc['total_doublings']):>10}  {tail}"
                 + (" (estimated)" if est else "") + f"  = x{doc['eta_ratio']:.3g} eta")
    lines += [f"  note: {n}" for n in doc.get("notes", [])]
    return lines


def sweep_ledger_lines(doc: dict) -> list[str]:
    """Every run of a sweep against its reference."""
    ref = doc["reference"]
    lines = [f"sweep {str(doc.get('sweep_id'))[:8]}: reference run {ref['run_id'][:8]} ({ref['variant']})"]
    for entry in doc["ledgers"]:
        lines += ledger_lines(entry) + [""]
    return lines


def frontier_lines(doc: dict) -> list[str]:
    """The ceiling table, the fit of r with its interval, and the devices left out."""
    lines = [f"hardware frontier: {doc['what']}",
             f"  {'device':<26}{'released':<12}{'peak TFLOP/s':>13}{'TDP W':>8}{'ceiling FLOP/J':>16}"]
    for row in doc["devices"]:
        if row["eta_ceiling_flops_per_j"] is None:
            continue
        lines.append(f"  {row['device']:<26}{row['release_date']:<12}"
                     f"{row['peak_flops_per_s'] / 1e12:>13.4g}{row['tdp_w']:>8.0f}"
                     f"{si(row['eta_ceiling_flops_per_j'], 'FLOP/J'):>16}")
    fit = doc["fit"]
    if fit is None:
        lines.append(f"fit: {MISSING} ({doc['fit_reason']})")
    else:
        ci = (f"95% interval [{fit['r_low']:.3f}, {fit['r_high']:.3f}]" if fit["r_low"] is not None
              else f"no interval ({fit['interval_reason']})")
        dt = fit["doubling_time_years"]
        lines.append(f"fit: log2(eta_ceiling) = {fit['a_log2']:.3f} + r (t - {fit['t0_year']:.0f}), "
                     f"over {fit['n']} devices")
        lines.append(f"  r = {fit['r_per_year']:.3f} doublings/year, {ci}"
                     + (f"; a doubling every {dt:.2g} years" if dt else ""))
    left = [r for r in doc["devices"] if r["eta_ceiling_flops_per_j"] is None]
    lines += [f"  not in the fit: {r['device']} ({r['reason']})" for r in left]
    for point in doc.get("measured", []):
        lines.append(f"  measured: run {point['run_id'][:8]} on {point['device']}: "
                     f"{estimated(si(point['eta_flops_per_j'], 'FLOP/J'), point['estimated'])}")
    lines += [f"  measured run not placed: {s['run_id'][:8]} ({s['reason']})"
              for s in doc.get("measured_skipped", [])]
    return lines
