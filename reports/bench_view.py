"""The end-of-run view of ``etameter bench``: one run as (label, value) lines.

Plain metrics come from ``profiler.measurement.FIELDS`` (label, unit, format, the estimated
label of energy figures, "n/a (reason)" from the field's reason key), in the order of FIELDS;
a new labelled field shows up here by itself. Composite lines (the run's identity, the timed
windows, the dense peak with its source, the energy's method and scope, idle power, quality)
are built by hand. reports.terminal renders the lines.

Figures measured per window are the medians over the run's windows, each followed by the 95%
interval of its geometric mean in brackets (``<key>_ci_low/_ci_high`` of the summary); estimated energy
figures carry the band they may lie in; the run's noise and peak notes are shown beside the
figures they qualify.
"""

from __future__ import annotations

from profiler.measurement import FIELDS, INTERVAL_KEYS, Field
from reports.caveats import status_label
from reports.compare import ranks_text
from reports.table import latency_text
from reports.numbers import MISSING, band_text, estimated, interval_text, pct, si


def _with_reason(text: str, reason: str | None) -> str:
    return f"{MISSING} ({reason})" if text == MISSING and reason else text


#: Estimated figures shown with their band: field -> (low key, high key).
_BANDS = {"energy_j": ("energy_low_j", "energy_high_j"),
          "eta_flops_per_j": ("eta_low_flops_per_j", "eta_high_flops_per_j")}


def _interval(f: Field, summary: dict) -> str:
    low, high = summary.get(f"{f.key}_ci_low"), summary.get(f"{f.key}_ci_high")
    if f.key not in INTERVAL_KEYS:
        return ""
    return interval_text(low, high, pct if f.fmt == "pct" else (lambda v: si(v, f.unit)))


def field_text(f: Field, summary: dict) -> str:
    """A field's value in ``summary`` as text: its format and unit, the 95% interval of its
    mean over windows, "(estimated)" (with the band where there is one) for an energy figure
    from an estimate, and the reason when it is missing."""
    value = summary.get(f.key)
    if f.fmt == "pct":
        text = pct(value)
    elif f.fmt == "si":
        text = si(value, f.unit)
    else:
        text = MISSING if value is None else str(value)
    interval = _interval(f, summary) if text != MISSING else ""
    if f.energy and summary.get("energy_estimated") and f.key in _BANDS:
        low, high = (summary.get(k) for k in _BANDS[f.key])
        text = band_text(text + interval, low, high, f.unit)
    elif f.energy:
        text = estimated(text + interval, summary.get("energy_estimated"))
    else:
        text += interval
    return _with_reason(text, summary.get(f.reason)) if f.reason else text


def _dense_peak(s: dict) -> str:
    if s.get("peak_flops_per_s") is None:
        return _with_reason(si(None, "FLOP/s"), s.get("peak_source"))
    return f"{si(s['peak_flops_per_s'], 'FLOP/s')} {s['precision']} ({s.get('peak_source')})"


def _energy_method(s: dict) -> str:
    return (f" [method {s['energy_method']}, scope {s['energy_scope']}]" if s.get("energy_method") else "")


def _peak_power(s: dict) -> str:
    est = s.get("energy_estimated")
    return f", peak {estimated(si(s['peak_power_w'], 'W'), est)}" if s.get("peak_power_w") else ""


def _idle_power(s: dict) -> str:
    est = s.get("energy_estimated")
    return (f" (idle {estimated(si(s['idle_power_w'], 'W'), est)})"
            if s.get("idle_power_w") is not None else "")


#: Labels that depend on the run, or differ from the field's (per-window energies).
_LABELS = {
    "peak_flops_per_s": lambda s: "dense peak",
    "mfu_vs_variant_peak": lambda s: f"MFU vs {s.get('variant_precision')} peak",
    "energy_j": lambda s: "energy per window",
    "energy_net_j": lambda s: "net of idle, per window",
}
#: Fields whose value is composite rather than the plain field text.
_VALUES = {"peak_flops_per_s": _dense_peak}
#: Decode latency fields: shown for decode runs only, in ms.
_DECODE_ONLY = {"first_token_s", "token_latency_p50_s", "token_latency_p90_s",
                "token_latency_p99_s"}
_VALUES.update({key: (lambda s, key=key: _with_reason(latency_text(s.get(key)),
                                                      s.get("latency_reason")))
                for key in _DECODE_ONLY})
#: Text appended to a field's value.
_SUFFIXES = {"energy_j": _energy_method, "avg_power_w": _peak_power, "energy_net_j": _idle_power}
#: Fields left out of a run's view: MFU vs the variant's own peak when the variant computes
#: in the reference precision (it would repeat MFU).
_HIDDEN = {"mfu_vs_variant_peak": lambda s: s.get("variant_precision") in (None, s.get("precision"))}
#: Lines shown after a field: (label, summary key of the text), when the text is there.
_AFTER = {"mfu_vs_ceiling": ("peak note", "peak_note")}


def metric_lines(summary: dict, scenario: str | None = None) -> list[tuple[str, str]]:
    """(label, value) for every labelled field of FIELDS (and the few in ``_LABELS``), in order,
    with the notes of ``_AFTER`` beside the figure they qualify; decode latency for decode
    runs only."""
    lines = []
    for f in FIELDS:
        if f.label is None and f.key not in _LABELS:
            continue
        if f.key in _DECODE_ONLY and scenario != "decode":
            continue
        if f.key in _HIDDEN and _HIDDEN[f.key](summary):
            continue
        label = _LABELS[f.key](summary) if f.key in _LABELS else f.label
        value = _VALUES[f.key](summary) if f.key in _VALUES else field_text(f, summary)
        suffix = _SUFFIXES.get(f.key)
        lines.append((label, value + (suffix(summary) if suffix else "")))
        after = _AFTER.get(f.key)
        if after and summary.get(after[1]):
            lines.append((after[0], summary[after[1]]))
    return lines


def bench_lines(run: dict) -> list[tuple[str, str]]:
    """(label, value) pairs describing one run; missing values carry their reason."""
    cfg = run["config"]
    device = cfg["device"]
    lines = [
        ("run", f"{run['id']} ({status_label(run)})"),
        ("preset", f"{run['preset']}: {cfg.get('preset_reason')}"),
        ("workload", f"{run['scenario']}, batch {cfg['batch_size']} x seq {cfg['seq_len']}"
                     + (f", {cfg['new_tokens']} new tokens" if run["scenario"] == "decode" else "")
                     + (f"; {ranks_text(run)}, batch per rank, figures for the node"
                        if ranks_text(run) else "")),
        ("variant", run["variant"]),
        ("device", f"{device['name']} ({device['type']}); profile "
                   f"{device.get('profile') or 'none: ' + str(device.get('profile_reason'))}"),
    ]
    if cfg.get("batch_reason") or cfg.get("seq_len_reason"):
        lines.insert(3, ("sizes", f"batch {cfg['batch_size']}: {cfg.get('batch_reason') or 'n/a'}; "
                                  f"seq {cfg['seq_len']}: {cfg.get('seq_len_reason') or 'n/a'}"))
    if cfg.get("whole_model_layers"):
        lines.insert(2, ("model", str(cfg.get("model_description"))))
    whole = cfg.get("whole_model")
    if whole:
        lines.append(("whole model", f"{whole['n_layers']} layers (this run: "
                                     f"{whole['slice_layers']}): "
                                     f"{si(whole['logical_flops_per_step'], 'FLOP')}/step, "
                                     f"{si(whole['logical_flops_per_token'], 'FLOP')}/token"))
    lines += [("differences", d) for d in cfg.get("model_differences") or []]
    s = run.get("summary") or {}
    if run["status"] != "ok" or not s:
        return lines + [("reason", run.get("error") or "no result")]
    lines += [
        ("timed windows", f"{s['windows']} x {s['steps_per_window']} steps, median "
                          f"{s['step_time_s'] * 1e3:.1f} ms/step, spread "
                          f"{pct(s['tokens_per_s_spread'])}; warm-up excluded"
                          + (f"; {s['windows_added_for_noise']} added because the run was noisy"
                             if s.get("windows_added_for_noise") else "")),
        ("figures below", f"median of {s['windows']} windows"
                          + ("; [95% interval of the geometric mean]" if s["windows"] >= 2 else
                             "; no interval with one window")),
        ("logical FLOPs/step", f"{si(s['logical_flops_per_step'], 'FLOP')} "
                               f"(attention convention: {s['attention_convention']})"),
    ]
    lines += metric_lines(s, run["scenario"])
    if s.get("loss_first") is not None:
        lines.append(("loss (first -> last)", f"{s['loss_first']:.4f} -> {s['loss_last']:.4f}"))
    if s.get("compile_time_s") is not None:
        count = s.get("compile_count")
        lines.append(("compile time", f"{s['compile_time_s']:.1f} s"
                      + (f" over {count} compilation(s)" if count else "") + " (excluded)"
                      + (f"; {s['compile_note']}" if s.get("compile_note") else "")))
    q = s.get("quality")
    if q:
        detail = (f"relative error {q['rel_err']:.4g}, top-1 agreement {q['top1_agreement']:.3f}"
                  if q["kind"] == "logits" and q["rel_err"] is not None else
                  f"max loss deviation {q['max_rel_loss_dev']:.4g} over {len(q['losses'])} steps"
                  if q["kind"] == "loss" and q["max_rel_loss_dev"] is not None else "non-finite")
        lines.append(("quality vs fp32", ("ok: " if q["ok"] else "FLAGGED: ") + detail))
    info = s.get("variant_info") or {}
    if info.get("unconverted_layers"):
        lines.append(("unconverted layers", ", ".join(info["unconverted_layers"])))
    if s.get("noise_note"):
        lines.append(("noise", s["noise_note"]))
    if s.get("flags"):
        from profiler.measurement import flag_notes

        lines.append(("flags", "; ".join(flag_notes(s["flags"]))))
    return lines
