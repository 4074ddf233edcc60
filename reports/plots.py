"""Plots with matplotlib (PNG or SVG, chosen by the file suffix).

- ``variants_figure``: eta and MFU by variant (estimated eta and flagged quality are marked);
- ``power_figure``: a run's power timeline with its timed windows shaded (``run_power_figure``
  for a stored run);
- ``throughput_figure``: tokens/s against batch size or sequence length, per variant.
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


def variants_figure(runs: list[dict]):
    """Two bar charts, eta and MFU, one bar per ok run (labelled by its variant)."""
    plt = _pyplot()
    ok = [r for r in runs if r["status"] == "ok" and r.get("summary")]
    if not ok:
        raise ConfigError("no ok run to plot: run etameter bench first, or widen the filters")
    labels = [r["variant"] + ("\n(FLAGGED)" if r.get("quality_ok") is False else "") for r in ok]
    eta = [r["summary"].get("eta_flops_per_j") or 0.0 for r in ok]
    mfu = [100 * (r["summary"].get("mfu") or 0.0) for r in ok]
    estimated = any(r["summary"].get("energy_estimated") for r in ok)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.4 * len(ok)), 4.5))
    ax1.bar(labels, eta, color=["#c44e52" if r.get("quality_ok") is False else "#4c72b0" for r in ok])
    ax1.set_title("eta, logical FLOP/J" + (" (estimated)" if estimated else ""))
    ax2.bar(labels, mfu, color="#55a868")
    ax2.set_title("MFU, % of dense vendor peak")
    for ax, values in ((ax1, eta), (ax2, mfu)):
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        for i, r in enumerate(ok):
            if (r["summary"].get("eta_flops_per_j") if ax is ax1 else r["summary"].get("mfu")) is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
    first = ok[0]
    fig.suptitle(f"{first['preset']} {first['scenario']} on {first['device']}")
    fig.tight_layout()
    return fig


def power_figure(run: dict, samples: list[dict]):
    """Power over time for each metered device; each timed window is shaded and numbered."""
    plt = _pyplot()
    if not samples:
        raise ConfigError(f"run {run['id'][:8]} has no power samples (its meter does not sample "
                          "power: the CPU estimate and runs without a meter have none)")
    fig, ax = plt.subplots(figsize=(9, 4))
    for device in sorted({s["device"] for s in samples}):
        pts = [s for s in samples if s["device"] == device]
        ax.plot([p["t_s"] for p in pts], [p["power_w"] for p in pts], label=device, lw=1)
    for window in sorted({s["window"] for s in samples}):
        ts = [s["t_s"] for s in samples if s["window"] == window]
        ax.axvspan(min(ts), max(ts), alpha=0.12, color="grey")
        ax.text((min(ts) + max(ts)) / 2, ax.get_ylim()[1], f"window {window}", ha="center",
                va="top", fontsize=8)
    ax.set_xlabel("time since the first window, s")
    ax.set_ylabel("power, W")
    ax.set_title(f"run {run['id'][:8]}: {run['variant']} ({run['scenario']}, {run['preset']})")
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
    """tokens/s against ``key`` (batch_size or seq_len), one line per variant; needs at least
    two distinct values of ``key`` among the ok runs."""
    plt = _pyplot()
    if key not in ("batch_size", "seq_len"):
        raise ConfigError(f"throughput plots go against batch_size or seq_len, not {key!r}")
    ok = [r for r in runs if r["status"] == "ok" and r.get("summary")]
    if len({r["config"].get(key) for r in ok}) < 2:
        raise ConfigError(f"the runs have fewer than two values of {key}: sweep it first, e.g. "
                          f"etameter bench --{'batch' if key == 'batch_size' else 'seq'} N")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in sorted({r["variant"] for r in ok}):
        pts = sorted((r["config"][key], r["summary"]["tokens_per_s"]) for r in ok if r["variant"] == variant)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=variant)
    ax.set_xlabel(key)
    ax.set_ylabel("tokens/s")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"plot file {path} must end in .png or .svg")
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()
