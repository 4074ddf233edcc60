"""The end-of-run tables of ``etameter bench``: one run in detail, or a sweep compared."""

from __future__ import annotations

from reports.format import MISSING, estimated, pct, si


def _with_reason(text: str, reason: str | None) -> str:
    return f"{MISSING} ({reason})" if text == MISSING and reason else text


def bench_lines(run: dict) -> list[tuple[str, str]]:
    """(label, value) pairs describing one run; missing values carry their reason."""
    cfg = run["config"]
    device = cfg["device"]
    lines = [
        ("run", f"{run['id']} ({run['status']})"),
        ("preset", f"{run['preset']}: {cfg.get('preset_reason')}"),
        ("workload", f"{run['scenario']}, batch {cfg['batch_size']} x seq {cfg['seq_len']}"
                     + (f", {cfg['new_tokens']} new tokens" if run["scenario"] == "decode" else "")),
        ("variant", run["variant"]),
        ("device", f"{device['name']} ({device['type']}); profile "
                   f"{device.get('profile') or 'none: ' + str(device.get('profile_reason'))}"),
    ]
    s = run.get("summary") or {}
    if run["status"] != "ok" or not s:
        return lines + [("reason", run.get("error") or "no result")]
    est = s.get("energy_estimated")
    lines += [
        ("timed windows", f"{s['windows']} x {s['steps_per_window']} steps, median "
                          f"{s['step_time_s'] * 1e3:.1f} ms/step, spread "
                          f"{pct(s['tokens_per_s_spread'])}; warm-up excluded"),
        ("logical FLOPs/step", f"{si(s['logical_flops_per_step'], 'FLOP')} "
                               f"(attention convention: {s['attention_convention']})"),
        ("tokens/s", si(s["tokens_per_s"])),
        ("achieved FLOP/s", si(s["flops_per_s"], "FLOP/s")),
        ("dense peak", _with_reason(si(s.get("peak_flops_per_s"), "FLOP/s"), s.get("peak_source"))
         if s.get("peak_flops_per_s") is None else
         f"{si(s['peak_flops_per_s'], 'FLOP/s')} {s['precision']} ({s.get('peak_source')})"),
        ("MFU", _with_reason(pct(s.get("mfu")), s.get("mfu_reason"))),
        (f"MFU vs {s.get('variant_precision')} peak",
         _with_reason(pct(s.get("mfu_vs_variant_peak")), s.get("variant_peak_reason"))),
        ("MFU vs measured ceiling", _with_reason(pct(s.get("mfu_vs_ceiling")), s.get("ceiling_reason"))),
        ("energy", _with_reason(estimated(si(s.get("energy_j"), "J"), est), s.get("energy_reason"))
         + (f" [{s['energy_method']}, {s['energy_scope']}]" if s.get("energy_method") else "")),
        ("average power", estimated(si(s.get("avg_power_w"), "W"), est)
         + (f", peak {estimated(si(s['peak_power_w'], 'W'), est)}" if s.get("peak_power_w") else "")),
        ("net of idle", _with_reason(estimated(si(s.get("energy_net_j"), "J"), est),
                                     s.get("energy_net_reason"))
         + (f" (idle {estimated(si(s['idle_power_w'], 'W'), est)})"
            if s.get("idle_power_w") is not None else "")),
        ("eta (logical FLOP/J)", _with_reason(estimated(si(s.get("eta_flops_per_j")), est),
                                              s.get("eta_reason"))),
        ("tokens/J", estimated(si(s.get("tokens_per_j")), est)),
    ]
    if s.get("loss_first") is not None:
        lines.append(("loss (first -> last)", f"{s['loss_first']:.4f} -> {s['loss_last']:.4f}"))
    if s.get("compile_time_s") is not None:
        lines.append(("compile time", f"{s['compile_time_s']:.1f} s (excluded)"))
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
    if s.get("flags"):
        lines.append(("flags", ", ".join(s["flags"])))
    return lines


def print_bench(run: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="etameter bench", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in bench_lines(run):
        table.add_row(Text(label), Text(value))
    Console().print(table)


def print_sweep(runs: list[dict]) -> None:
    from reports.compare import COLUMNS, comparison, comparison_cells
    from reports.console import print_table

    cells, notes = comparison_cells(comparison(runs))
    first = runs[0]
    print_table(f"etameter bench: {first['scenario']} on {first['preset']}, against "
                f"{first['variant']}", COLUMNS, cells, notes)
