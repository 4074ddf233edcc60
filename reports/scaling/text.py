"""A forecast (reports.scaling.forecast.forecast) as lines of text for the terminal."""

from __future__ import annotations

from reports.numbers import MISSING, estimated, si

#: The burden figures, in order: key in the forecast, label, format.
_FIGURES = (("device_hours", "device-hours", "{:.4g}"),
            ("wall_clock_days", "wall-clock on {devices} device(s), days", "{:.4g}"),
            ("wall_clock_from_mfu_s", "wall-clock from MFU, s", "{:.4g}"),
            ("cost", "cost", "{:.4g}"), ("doublings_needed", "efficiency doublings needed", "{:.3g}"),
            ("years_at_r", "years to make them at r", "{:.3g}"),
            ("years_to_target_with_growth", "years to the target with doubling", "{:.3g}"))


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
    energy = f"{doc['energy_j']:.4g} J = {doc['energy_mwh']:.4g} MWh"
    lines.append(f"energy: {estimated(energy, est)}")
    for key, label, fmt in _FIGURES:
        label = label.format(devices=doc["devices"])
        value = doc.get(key)
        if key == "doublings_needed" and value is not None and value <= 0:
            lines.append(f"{label}: none (the eta suffices with {-value:.3g} doublings to spare)")
            continue
        reason = doc["reasons"].get(key) or doc["reasons"].get(key.replace("_days", "_s"))
        lines.append(f"{label}: " + (fmt.format(value) if value is not None else
                                     f"{MISSING}" + (f" ({reason})" if reason else "")))
    return lines
