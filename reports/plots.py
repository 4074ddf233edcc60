"""Plots with matplotlib (PNG or SVG, chosen by the file suffix).

- ``variants_figure``: eta and MFU by variant, two full-width panels per group of comparable
  runs, with 95% intervals as error bars (estimated eta with its band; flagged quality red);
- ``power_figure``: a run's power timeline with its timed windows shaded (``run_power_figure``
  for a stored run);
- ``throughput_figure``: tokens/s against batch size or sequence length, one subplot per
  group and one line per series (variant) in it.

Every figure is titled with its group (reports.compare): runs of different groups never share
an axis, and a line joins only the points of one series. Sizes, titles, tick labels and axis
units come from reports.plot_style.
"""

from __future__ import annotations

import io
from pathlib import Path

from profiler.errors import ConfigError
from reports.numbers import si

from reports.plot_style import (DPI, TICK_PT, WIDTH_IN, category_ticks, integer_axis, plain,
                                pyplot as _pyplot, set_title, si_axis, wrap)

SUFFIXES = (".png", ".svg")


def _err(values, lows, highs):
    """Error bars (below, above) from 95% intervals, zero where there is none."""
    return [[max(0.0, v - lo) if lo is not None else 0.0 for v, lo in zip(values, lows)],
            [max(0.0, hi - v) if hi is not None else 0.0 for v, hi in zip(values, highs)]]


def _bars(ax, values: list[float | None], lows, highs, color) -> list[float]:
    """Bars of ``values`` with their 95% intervals, n/a written where a value is missing;
    returns the heights drawn. An interval reaching past three times the tallest bar (two
    windows of a noisy run) would flatten every bar: the axis stops short of it and the
    interval's top is written instead."""
    heights = [v or 0.0 for v in values]
    err = _err(heights, lows, highs)
    ax.bar(range(len(values)), heights, width=0.6, color=color, yerr=err, capsize=4)
    for i, v in enumerate(values):
        if v is None:
            ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=TICK_PT)
    tallest = max(heights, default=0.0)
    tops = [h + above for h, above in zip(heights, err[1])]
    if tallest > 0 and max(tops) > 3 * tallest:
        limit = 1.15 * max([t for t in tops if t <= 3 * tallest] + [tallest])
        ax.set_ylim(0, limit)
        for i, top in enumerate(tops):
            if top > limit:
                ax.text(i + 0.04, 0.97, f"interval\nup to {si(top)}", ha="left", va="top",
                        fontsize=TICK_PT - 1, transform=ax.get_xaxis_transform())
    return heights


def _eta_panel(ax, ok: list[dict], labels: list[str]) -> None:
    estimated = any(r["energy_estimated"] for r in ok)
    eta = _bars(ax, [r["eta_flops_per_j"] for r in ok], [r["eta_flops_per_j_ci_low"] for r in ok],
          [r["eta_flops_per_j_ci_high"] for r in ok],
          ["#c44e52" if r.get("quality_ok") is False else "#4c72b0" for r in ok])
    for i, r in enumerate(ok):  # the band an estimated eta may lie in, beside its bar
        if r["energy_estimated"] and r.get("eta_low_flops_per_j") is not None and eta[i]:
            ax.errorbar(i + 0.3, eta[i], yerr=_err([eta[i]], [r["eta_low_flops_per_j"]],
                                                   [r.get("eta_high_flops_per_j")]),
                        fmt="none", ecolor="grey", capsize=3, lw=1)
    set_title(ax, "eta: logical FLOPs per joule" + (
        " (estimated: the grey line beside a bar is the band it may lie in)" if estimated else ""))
    si_axis(ax, "eta", "logical FLOP/J" + (" (estimated)" if estimated else ""))
    category_ticks(ax, labels)


def _mfu_panel(ax, ok: list[dict], labels: list[str]) -> None:
    _bars(ax, [None if r["mfu"] is None else 100 * r["mfu"] for r in ok], [None if r["mfu_ci_low"] is None else 100 * r["mfu_ci_low"] for r in ok],
          [None if r["mfu_ci_high"] is None else 100 * r["mfu_ci_high"] for r in ok], "#55a868")
    set_title(ax, "MFU: logical FLOP/s as a share of the dense peak of the reference precision")
    si_axis(ax, "MFU", "% of dense peak")
    category_ticks(ax, labels)


def variants_figure(groups: list[dict]):
    """eta and MFU by variant: per group (reports.compare ``group_documents``), its title and
    two full-width bar charts; error bars are the 95% intervals over windows, an estimated
    eta has its band beside it, and a variant with flagged quality is drawn red."""
    plt = _pyplot()
    groups = [g for g in groups if any(r["status"] == "ok" for r in g["rows"])]
    if not groups:
        raise ConfigError("no ok run to plot: run etameter bench first, or widen the filters")
    width = max(WIDTH_IN, 1.1 * max(len(g["rows"]) for g in groups))
    fig = plt.figure(figsize=(width, 6.6 * len(groups) + 0.4), layout="constrained")
    fig.suptitle(wrap("medians over windows; error bars: 95% interval of the geometric mean "
                      "over windows", width, 9), fontsize=9)
    for sub, group in zip(fig.subfigures(len(groups), 1, squeeze=False)[:, 0], groups):
        ok = [r for r in group["rows"] if r["status"] == "ok"]
        labels = [plain(r["variant"]) + ("\n(FLAGGED)" if r.get("quality_ok") is False else "")
                  for r in ok]
        sub.suptitle(wrap(plain(group["title"]), width, 10), fontsize=10, fontweight="bold")
        ax1, ax2 = sub.subplots(2, 1)
        _eta_panel(ax1, ok, labels)
        _mfu_panel(ax2, ok, labels)
    return fig


def power_figure(run: dict, samples: list[dict]):
    """Power over time for each metered device; each timed window is shaded and numbered."""
    plt = _pyplot()
    if not samples:
        raise ConfigError(f"run {run['id'][:8]} has no power samples (its meter does not sample "
                          "power: the CPU estimate and runs without a meter have none)")
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.4), layout="constrained")
    for device in sorted({s["device"] for s in samples}):
        pts = [s for s in samples if s["device"] == device]
        ax.plot([p["t_s"] for p in pts], [p["power_w"] for p in pts], label=plain(device), lw=1)
    for window in sorted({s["window"] for s in samples}):
        ts = [s["t_s"] for s in samples if s["window"] == window]
        ax.axvspan(min(ts), max(ts), alpha=0.12, color="grey")
        ax.text((min(ts) + max(ts)) / 2, 0.98, str(window), ha="center", va="top",
                fontsize=TICK_PT, transform=ax.get_xaxis_transform())
    si_axis(ax, "time since the first window", "s", axis="x")
    si_axis(ax, "power", "W")
    set_title(ax, f"run {run['id'][:8]}: {run['variant']} ({run['scenario']}, {run['preset']}); "
                  "shaded: the timed windows, numbered")
    ax.legend(fontsize=TICK_PT)
    return fig


def run_power_figure(store, run_id: str | None):
    """``power_figure`` of the stored run ``run_id`` (an id or a unique prefix)."""
    if not run_id:
        raise ConfigError("plot power needs --run ID")
    run = store.find_run(run_id)
    return power_figure(run, store.power_samples(run["id"]))


def throughput_figure(runs: list[dict], key: str):
    """tokens/s against ``key`` (batch_size or seq_len): one subplot per group of runs that
    differ only in ``key`` (and their sweep), titled with the group; one line per variant in
    it, joining only the runs of that series (the latest run at each point), with the 95%
    interval as error bars. Needs a series with at least two values of ``key``."""
    from reports.compare import GROUP_FIELDS, group_fields

    plt = _pyplot()
    if key not in ("batch_size", "seq_len"):
        raise ConfigError(f"throughput plots go against batch_size or seq_len, not {key!r}")
    series: dict[tuple, dict[tuple, dict]] = {}
    for r in (r for r in runs if r["status"] == "ok" and r.get("summary")):
        fields = group_fields(r, across_sweeps=True)
        panel = tuple((f, fields[f]) for f in GROUP_FIELDS if f not in (key, "sweep"))
        points = series.setdefault(panel, {}).setdefault((r["variant"],), {})
        points[r["config"].get(key)] = r  # oldest first: the latest run at each point wins
    panels = {p: lines for p, lines in series.items()
              if any(len(points) >= 2 for points in lines.values())}
    if not panels:
        raise ConfigError(f"no series of runs has two values of {key}: sweep it first, e.g. "
                          f"etameter bench --{'batch' if key == 'batch_size' else 'seq'} N")
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, 4.2 * len(panels)),
                             squeeze=False, layout="constrained")
    for (ax,), (panel, lines) in zip(axes, panels.items()):
        for (variant,), points in sorted(lines.items()):
            xs = sorted(points)
            s = [points[x]["summary"] for x in xs]
            tps = [x["tokens_per_s"] for x in s]
            ax.errorbar(xs, tps, yerr=_err(tps, [x.get("tokens_per_s_ci_low") for x in s],
                                           [x.get("tokens_per_s_ci_high") for x in s]),
                        marker="o", capsize=3, label=plain(variant))
        set_title(ax, ", ".join(f"{f} {v}" for f, v in panel) + "; latest run per point")
        ax.set_xscale("log", base=2)
        integer_axis(ax, "batch size" if key == "batch_size" else "sequence length")
        si_axis(ax, "throughput", "tokens/s")
        ax.legend(fontsize=TICK_PT)
    return fig


def save(fig, path: str | Path, *, force: bool = False, protected: tuple = ()) -> Path:
    """Write ``fig`` to ``path`` (.png or .svg) through a temporary file renamed into place;
    an existing file is replaced only with ``force``, and never a database or one of the
    ``protected`` files (profiler.files.write_atomically)."""
    from profiler.files import write_atomically

    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in SUFFIXES:
        raise ConfigError(f"plot file {path} must end in .png or .svg")
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format=fmt[1:]),
                         force=force, protected=protected, what="plot file")
    finally:
        _pyplot().close(fig)
    return path


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
    return buf.getvalue()
