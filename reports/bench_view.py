"""The end-of-run table of ``etameter bench``."""

from __future__ import annotations

from reports.format import MISSING, estimated, pct, si


def bench_lines(run: dict) -> list[tuple[str, str]]:
    """(label, value) pairs describing one run's result; missing values carry their reason."""
    cfg = run["config"]
    device = cfg["device"]
    lines = [
        ("run", f"{run['id']} ({run['status']})"),
        ("preset", f"{run['preset']}: {cfg.get('preset_reason')}"),
        ("workload", f"{run['scenario']}, batch {cfg['batch_size']} x seq {cfg['seq_len']}, "
                     f"{cfg['precision']}"),
        ("device", f"{device['name']} ({device['type']}); profile "
                   f"{device.get('profile') or 'none: ' + str(device.get('profile_reason'))}"),
    ]
    if not run["results"]:
        return lines + [("error", run.get("error") or "no result")]
    r = run["results"][0]
    est = r.get("energy_estimated")

    def with_reason(text: str, reason: str | None) -> str:
        return f"{MISSING} ({reason})" if text == MISSING and reason else text

    lines += [
        ("timed window", f"{r['steps']} steps in {r['duration_s']:.3f} s "
                         f"({r['step_time_s'] * 1e3:.1f} ms/step), warm-up excluded"),
        ("logical FLOPs/step", f"{si(r['logical_flops_per_step'], 'FLOP')} "
                               f"(attention convention: {r['attention_convention']})"),
        ("tokens/s", si(r["tokens_per_s"])),
        ("achieved FLOP/s", si(r["flops_per_s"], "FLOP/s")),
        ("dense peak", with_reason(si(r.get("peak_flops_per_s"), "FLOP/s"),
                                   r.get("peak_source")) if r.get("peak_flops_per_s") is None
         else f"{si(r['peak_flops_per_s'], 'FLOP/s')} {r['precision']} ({r.get('peak_source')})"),
        ("MFU", with_reason(pct(r.get("mfu")), r.get("mfu_reason"))),
        ("MFU vs measured ceiling", with_reason(pct(r.get("mfu_vs_ceiling")), r.get("ceiling_reason"))
         + (f" (ceiling {si(r['ceiling_flops_per_s'], 'FLOP/s')})"
            if r.get("ceiling_flops_per_s") else "")),
        ("energy", with_reason(estimated(si(r.get("energy_j"), "J"), est), r.get("energy_reason"))
         + (f" [{r['energy_method']}, {r['energy_scope']}]" if r.get("energy_method") else "")),
        ("average power", estimated(si(r.get("avg_power_w"), "W"), est)
         + (f", peak {estimated(si(r['peak_power_w'], 'W'), est)}" if r.get("peak_power_w") else "")),
        ("net of idle", with_reason(estimated(si(r.get("energy_net_j"), "J"), est),
                                    r.get("energy_net_reason"))
         + (f" (idle {estimated(si(r['idle_power_w'], 'W'), est)})"
            if r.get("idle_power_w") is not None else "")),
        ("eta (logical FLOP/J)", with_reason(estimated(si(r.get("eta_flops_per_j")), est),
                                             r.get("eta_reason"))),
        ("tokens/J", estimated(si(r.get("tokens_per_j")), est)),
        ("loss (first -> last)", f"{r.get('loss_first'):.4f} -> {r.get('loss_last'):.4f}"
         if r.get("loss_first") is not None else MISSING),
    ]
    if r.get("flags"):
        lines.append(("flags", ", ".join(r["flags"])))
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
