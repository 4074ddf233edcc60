"""Plots with matplotlib (PNG or SVG, chosen by the file suffix).

- ``variants_figure``: eta and MFU by variant, one row per group of comparable runs, with
  95% intervals as error bars (estimated eta and flagged quality are marked);
- ``power_figure``: a run's power timeline with its timed windows shaded (``run_power_figure``
  for a stored run);
- ``throughput_figure``: tokens/s against batch size or sequence length, one subplot per
  group and one line per series (variant) in it.

Every figure is titled with its group (reports.compare): runs of different groups never share
an axis, and a line joins only the points of one series.
"""

from __future__ import annotations

import io
from pathlib import Path

from profiler.errors import ConfigError

SUFFIXES = (".png", ".svg")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plain(text: str) -> str:
    """``text`` drawn as written: a '$' in a variant, device or run name must not start
    matplotlib math text (it would garble the label or fail the plot). Axis tick labels keep
    their math (log-axis exponents), so this is applied to etameter's own texts only."""
    return str(text).replace("$", r"\$")


def _err(values, lows, highs):
    """Error bars (below, above) from 95% intervals, zero where there is none."""
    return [[max(0.0, v - lo) if lo is not None else 0.0 for v, lo in zip(values, lows)],
            [max(0.0, hi - v) if hi is not None else 0.0 for v, hi in zip(values, highs)]]


def variants_figure(groups: list[dict]):
    """eta and MFU by variant, one row of two bar charts per group (reports.compare
    ``group_documents``), titled with the group; error bars are the 95% intervals over
    windows, estimated eta is marked and flagged quality drawn red."""
    plt = _pyplot()
    groups = [g for g in groups if any(r["status"] == "ok" for r in g["rows"])]
    if not groups:
        raise ConfigError("no ok run to plot: run etameter bench first, or widen the filters")
    width = max(8, 1.4 * max(len(g["rows"]) for g in groups))
    fig, axes = plt.subplots(len(groups), 2, figsize=(width, 4.8 * len(groups)), squeeze=False)
    for (ax1, ax2), group in zip(axes, groups):
        ok = [r for r in group["rows"] if r["status"] == "ok"]
        labels = [plain(r["variant"]) + ("\n(FLAGGED)" if r.get("quality_ok") is False else "")
                  for r in ok]
        eta = [r["eta_flops_per_j"] or 0.0 for r in ok]
        mfu = [100 * (r["mfu"] or 0.0) for r in ok]
        estimated = any(r["energy_estimated"] for r in ok)
        ax1.bar(labels, eta, color=["#c44e52" if r.get("quality_ok") is False else "#4c72b0" for r in ok],
                yerr=_err(eta, [r["eta_flops_per_j_ci_low"] for r in ok],
                          [r["eta_flops_per_j_ci_high"] for r in ok]), capsize=4)
        ax1.set_title("eta, logical FLOP/J" + (" (estimated)" if estimated else ""), fontsize=9)
        ax2.bar(labels, mfu, color="#55a868",
                yerr=_err(mfu, [None if r["mfu_ci_low"] is None else 100 * r["mfu_ci_low"] for r in ok],
                          [None if r["mfu_ci_high"] is None else 100 * r["mfu_ci_high"] for r in ok]),
                capsize=4)
        ax2.set_title("MFU, % of dense vendor peak", fontsize=9)
        for ax, key in ((ax1, "eta_flops_per_j"), (ax2, "mfu")):
            ax.tick_params(axis="x", rotation=45, labelsize=8)
            for i, r in enumerate(ok):
                if r[key] is None:
                    ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax1.annotate(plain(_wrap(group["title"])), (0, 1.12), xycoords="axes fraction", fontsize=9,
                     va="bottom", annotation_clip=False)
    fig.suptitle("medians over windows; error bars: 95% interval of the geometric mean", fontsize=9)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def power_figure(run: dict, samples: list[dict]):
    """Power over time for each metered device; each timed window is shaded and numbered."""
    plt = _pyplot()
    if not samples:
        raise ConfigError(f"run {run['id'][:8]} has no power samples (its meter does not sample "
                          "power: the CPU estimate and runs without a meter have none)")
    fig, ax = plt.subplots(figsize=(9, 4))
    for device in sorted({s["device"] for s in samples}):
        pts = [s for s in samples if s["device"] == device]
        ax.plot([p["t_s"] for p in pts], [p["power_w"] for p in pts], label=plain(device), lw=1)
    for window in sorted({s["window"] for s in samples}):
        ts = [s["t_s"] for s in samples if s["window"] == window]
        ax.axvspan(min(ts), max(ts), alpha=0.12, color="grey")
        ax.text((min(ts) + max(ts)) / 2, ax.get_ylim()[1], f"window {window}", ha="center",
                va="top", fontsize=8)
    ax.set_xlabel("time since the first window, s")
    ax.set_ylabel("power, W")
    ax.set_title(plain(f"run {run['id'][:8]}: {run['variant']} ({run['scenario']}, {run['preset']})"))
    ax.legend(fontsize=8)
    fig.tight_layout()
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
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 4.8 * len(panels)), squeeze=False)
    for (ax,), (panel, lines) in zip(axes, panels.items()):
        for (variant,), points in sorted(lines.items()):
            xs = sorted(points)
            s = [points[x]["summary"] for x in xs]
            tps = [x["tokens_per_s"] for x in s]
            ax.errorbar(xs, tps, yerr=_err(tps, [x.get("tokens_per_s_ci_low") for x in s],
                                           [x.get("tokens_per_s_ci_high") for x in s]),
                        marker="o", capsize=3, label=plain(variant))
        ax.set_title(plain(_wrap(", ".join(f"{f} {v}" for f, v in panel) + "; latest run per point")),
                     fontsize=9)
        ax.set_xlabel(key)
        ax.set_ylabel("tokens/s")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    fig.tight_layout()
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
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format=fmt[1:]),
                         force=force, protected=protected, what="plot file")
    finally:
        _pyplot().close(fig)
    return path


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()
