"""Plain-text answers of the small commands, as lines: the CLI echoes them one by one.

Each function takes the document the command prints with ``--json`` (so the text and the JSON
can never disagree) and returns its lines.
"""

from __future__ import annotations

from reports.numbers import pct, si


def flops_lines(doc: dict, scenario: str, convention: str, result) -> list[str]:
    """``etameter flops``: the sizes, N_mm, and FLOPs per token and per step by component
    (``result`` is the ``profiler.flops`` answer the document was made from)."""
    lines = [f"{doc['preset']} {scenario}: batch {doc['batch_size']} x seq {doc['seq_len']}, "
             f"attention convention {convention}"]
    if doc.get("batch_reason"):
        lines.append(f"  batch: {doc['batch_reason']}; seq: {doc['seq_len_reason']}")
    lines += [f"matmul parameters (active): {result.n_mm_active:,}",
              f"{'component':<18}{'FLOPs/token':>16}{'FLOPs/step':>16}"]
    per_step = result.per_step.to_dict()
    for key, per_token in result.per_token.to_dict().items():
        lines.append(f"{key:<18}{si(per_token):>16}{si(per_step[key]):>16}")
    if doc.get("whole_model"):
        whole = doc["whole_model"]
        lines.append(f"whole model ({whole['n_layers']} layers): "
                     f"{si(whole['logical_flops_per_token'])} FLOPs/token, "
                     f"{si(whole['logical_flops_per_step'])} FLOPs/step")
    lines += [f"difference: {d}" for d in doc.get("differences", [])]
    return lines + [f"note: {note}" for note in result.notes]


def mfu_lines(doc: dict) -> list[str]:
    """``etameter mfu``: FLOPs per token, the achieved rate against the peak, MFU with and
    without the attention term (``doc`` is ``MfuReport.to_dict()``)."""
    dense = "6N" if doc["scenario"] == "train" else "2N"
    return [
        f"FLOPs per token: {si(doc['flops_per_token'], 'FLOP')} "
        f"({si(doc['flops_per_token_without_attention'], 'FLOP')} without attention; "
        f"attention convention {doc['attention_convention']})",
        f"achieved: {si(doc['flops_per_s'], 'FLOP/s')} over {doc['devices']} device(s) of "
        f"{si(doc['peak_flops_per_s'], 'FLOP/s')} ({doc['peak_source']})",
        f"MFU: {pct(doc['mfu'])} ({pct(doc['mfu_without_attention'])} with {dense} alone)",
        f"attention width H*Q: {doc['attention_width']} over {doc['n_layers']} layers",
    ] + ([f"note: {doc['head_dim_note']}"] if doc.get("head_dim_note") else [])


def overhead_lines(result: dict) -> list[str]:
    """``etameter overhead``: the step-time overhead of metering, its 95% interval and the
    verdict against the target (``result`` from harness.overhead.measure_overhead)."""
    if result.get("overhead_ci_low_pct") is not None:
        interval = (f"95% interval of the mean {result['overhead_ci_low_pct']:+.2f}% to "
                    f"{result['overhead_ci_high_pct']:+.2f}%")
    else:
        interval = "no interval"
    lines = [f"{result['preset']} on {result['device']}, meter {result['meter']}: "
             f"{result['overhead_pct']:+.2f}% step time (median of {result['repeats']} pairs, "
             f"spread {result['spread_pct']:.2f}%; {interval})",
             f"verdict: {result['verdict']} (target < {result['target_pct']}%)"]
    if result.get("verdict_reason"):
        lines.append(f"  {result['verdict_reason']}")
    return lines


def presets_lines(docs: list[dict]) -> list[str]:
    """``etameter presets``: each shape's sizes, parameters, logical training FLOPs per token,
    the estimated memory of a training and a decode step at its sizes (in the precisions a
    run on the device takes by default), and its description."""
    mem = docs[0]["memory"] if docs else {}
    assumed = (f"{mem['train']['precision']} training, {mem['decode']['precision']} decode of 16 "
               f"tokens, as on {'a GPU' if mem['train']['device_type'] == 'cuda' else 'the CPU'}"
               if mem else "")
    lines = [f"{'name':<14} {'batch x seq':>12} {'params':>8} {'train FLOP/token':>17} "
             f"{'train mem':>10} {'decode mem':>11}  description (memory estimated: {assumed})"]
    for d in docs:
        mem = d["memory"]
        lines.append(f"{d['name']:<14} {str(d['batch_size']) + 'x' + str(d['seq_len']):>12} "
                     f"{si(d['parameters']):>8} {si(d['logical_flops_per_token_train'], 'FLOP'):>17} "
                     f"{si(mem['train']['bytes'], 'B'):>10} {si(mem['decode']['bytes'], 'B'):>11}  "
                     f"{d['description']}")
    return lines


def calibration_lines(doc: dict) -> list[str]:
    """``etameter calibrate``: each measured ceiling against the vendor peak or datasheet,
    and the precisions skipped (``doc`` from the calibrate command)."""
    device = doc["device"]
    lines = [f"{device['name']} ({device['type']}), stored in {doc['db']} under {device['key']}"]
    for r in doc["ceilings"]:
        if r["kind"] == "matmul":
            kind = r.get("peak_kind", "vendor")
            vs = (f", {pct(r['fraction_of_vendor_peak'])} of the {kind} peak"
                  if r["fraction_of_vendor_peak"] is not None else f", no {kind} peak")
            lines.append(f"  matmul {r['precision']:<5} {si(r['value'], 'FLOP/s'):>14}  "
                         f"n={r['size']}, spread {pct(r['spread'])}{vs}")
        else:
            lines.append(f"  copy        {si(r['value'], 'B/s'):>14}  {r['size'] / 2**20:.0f} MiB, "
                         f"spread {pct(r['spread'])}")
        if r.get("noisy"):
            lines.append(f"    NOISY: {r['noise_reason']}")
            used = r.get("ceiling_in_use")
            lines.append("    runs use " + (f"the steady ceiling of {used['created_at'][:16]} "
                                            f"({si(used['value'], 'FLOP/s' if r['kind'] == 'matmul' else 'B/s')})"
                                            if used else "no ceiling until one is steady"))
    return lines + [f"  skipped {precision}: {why}" for precision, why in doc["skipped"].items()]


def devices_lines(docs: list[dict]) -> list[str]:
    """``etameter devices``: each device, its profile and evidence, peaks and ceilings
    (``docs`` from ``hardware_profiles.report.devices_document``)."""
    lines = []
    for d in docs:
        lines.append(f"{d['name']} ({d['type']}): profile {d['profile'] or 'none'}"
                     + (f" [{d['profile_reason']}]" if d["profile_reason"] else ""))
        lines.append(f"  evidence: {d['evidence']}")
        for p, peak in d["peaks"].items():
            if peak["flops_per_s"] is not None:
                lines.append(f"  peak {p:<5} {si(peak['flops_per_s'], 'FLOP/s'):>14}  {peak['source']}")
        for c in d["ceilings"]:
            lines.append(f"  ceiling {c['kind']} {c['precision'] or '':<5} "
                         f"{si(c['value'], 'FLOP/s' if c['kind'] == 'matmul' else 'B/s')} "
                         f"({c['created_at'][:19]})"
                         + (" NOISY: not used for MFU" if c.get("noisy") else ""))
    return lines


def meters_lines(report: list[dict]) -> list[str]:
    """``etameter meters``: each meter, available or why not, and the devices it sees."""
    lines = []
    for m in report:
        state = "available" if m["available"] else f"unavailable: {m['reason']}"
        lines.append(f"{m['meter']:<10} ({m['for']}) {state}")
        lines += [f"    {d}" for d in m.get("devices", [])]
    return lines
