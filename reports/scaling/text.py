"""A forecast (reports.scaling.forecast.forecast) as lines of text for the terminal.

One time unit per family of figures: wall-clock in days, the doubling figures in years
(seconds only in ``--json``); every missing figure says why; figures that rest on an
estimated eta or rate say so; the cost names its currency."""

from __future__ import annotations

from reports.numbers import MISSING, estimated, si

#: The burden figures, in order: key in the forecast, label, format.
_FIGURES = (("device_hours", "device-hours", "{:.4g}"),
            ("wall_clock_days", "wall-clock on {devices} device(s), days", "{:.4g}"),
            ("wall_clock_from_mfu_days", "wall-clock from MFU on {devices} device(s), days", "{:.4g}"),
            ("cost", "{cost_label}", "{:.4g}"),
            ("doublings_needed", "efficiency doublings needed", "{:.3g}"),
            ("years_at_r", "years to make them at r", "{:.3g}"),
            ("years_to_target_with_growth", "years to the target with doubling", "{:.3g}"))


def _cost_label(doc: dict) -> str:
    currency = doc.get("currency")
    return f"cost, {currency}" if currency else "cost (in the currency of --price-per-kwh)"


def _range(doc: dict, key: str, fmt: str) -> str:
    """`` (range ...)`` from r's 95% interval, for a figure that has one; an open end says why."""
    if doc.get("doublings_per_year_low") is None or f"{key}_low" not in doc:
        return ""
    low, high = doc[f"{key}_low"], doc[f"{key}_high"]
    text = f" (range from r's 95% interval: {fmt.format(low) if low is not None else MISSING} to "
    if high is not None:
        return text + f"{fmt.format(high)})"
    return text + f"unbounded: {doc['reasons'].get(f'{key}_range')})"


def _rate_line(doc: dict) -> str | None:
    r = doc.get("doublings_per_year")
    if r is None:
        return None
    low, high = doc.get("doublings_per_year_low"), doc.get("doublings_per_year_high")
    ci = f" (95% interval {low:.3f} to {high:.3f})" if low is not None else ""
    return f"doubling rate r: {r:.3f} doublings/year{ci}, from {doc.get('doublings_per_year_source')}"


def forecast_lines(doc: dict) -> list[str]:
    """The law, target, compute, eta and energy, then each burden figure or why it is missing."""
    est = doc["eta_estimated"]
    law = doc["law"]
    cl = doc["compute_law"]
    lines = [f"law: {law['name']} ({law.get('source')})",
             f"  L(C) = {cl['l_inf']:.4g} + {cl['a']:.4g} C^-{cl['alpha']:.4g}",
             f"target loss: {doc['target_loss']:.4f}",
             f"logical compute: {doc['logical_compute_flop']:.4g} FLOP"]
    if "compute_optimal_n_params" in doc:
        lines.append(f"  compute-optimal: N = {doc['compute_optimal_n_params']:.4g}, "
                     f"D = {doc['compute_optimal_n_tokens']:.4g} tokens")
    lines.append(f"eta: {estimated(si(doc['eta_flops_per_j'], 'FLOP/J'), est)} from {doc['eta_source']}")
    if doc.get("eta_note"):
        lines.append(f"  note: {doc['eta_note']}")
    energy = f"{doc['energy_j']:.4g} J = {doc['energy_mwh']:.4g} MWh"
    lines.append(f"energy: {estimated(energy, est)}")
    rate = _rate_line(doc)
    if rate:
        lines.append(rate)
    marked = set(doc.get("estimated_figures", []))
    for key, label, fmt in _FIGURES:
        label = label.format(devices=doc["devices"], cost_label=_cost_label(doc))
        value = doc.get(key)
        if key == "doublings_needed" and value is not None and value <= 0:
            lines.append(estimated(f"{label}: none (the eta suffices with {-value:.3g} doublings "
                                   "to spare)", key in marked))
            continue
        if value is None:
            reason = doc["reasons"].get(key) or "an input is missing"
            lines.append(f"{label}: {MISSING} ({reason})")
            continue
        lines.append(f"{label}: " + estimated(fmt.format(value), key in marked)
                     + _range(doc, key, fmt))
    return lines
