"""The history figure: device ceilings, landmark runs and the user's runs on one log axis."""

from __future__ import annotations

from reports.plots import _pyplot, plain


def _line(ax, fit: dict, ts: list[float], **style):
    ax.plot(ts, [2 ** (fit["a_log2"] + fit["r_per_year"] * (t - fit["t0_year"])) for t in ts], **style)


def history_figure(doc: dict):
    """Each device profile's eta ceiling (peak per watt at TDP, at the history's precision)
    over its release date, each landmark's realised eta (hours x TDP, a lower bound: drawn as
    an up-pointing triangle) at its date with its own accelerator's ceiling, and the user's
    stored runs at the date they ran; the two fitted rates as lines. Log2 axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    dev = [r for r in doc["devices"] if r["eta_ceiling_flops_per_j"]]
    ax.scatter([r["t_years"] for r in dev], [r["eta_ceiling_flops_per_j"] for r in dev],
               color="tab:blue", s=18,
               label=f"ceiling: dense {doc['hardware_precision']} peak / TDP (device profiles)")
    for r in dev:
        ax.annotate(plain(r["id"].split("-", 1)[-1]), (r["t_years"], r["eta_ceiling_flops_per_j"]),
                    fontsize=6, color="tab:blue", xytext=(3, 3), textcoords="offset points")
    marks = [r for r in doc["landmarks"] if r.get("eta_flops_per_j")]
    ax.scatter([r["t_years"] for r in marks], [r["eta_flops_per_j"] for r in marks], marker="^",
               color="tab:red", s=36, zorder=3, label="landmark run: realised eta (hours x TDP, lower bound)")
    own = [r for r in marks if r.get("eta_ceiling_flops_per_j")]
    ax.scatter([r["t_years"] for r in own], [r["eta_ceiling_flops_per_j"] for r in own],
               marker="_", color="tab:red", s=120, label="its accelerator's ceiling at its precision")
    for r in marks:
        ax.annotate(plain(f"{r['id']} ({r['precision']})"), (r["t_years"], r["eta_flops_per_j"]),
                    fontsize=7, color="tab:red", xytext=(4, -9), textcoords="offset points")
        if r.get("eta_ceiling_flops_per_j"):
            ax.plot([r["t_years"]] * 2, [r["eta_flops_per_j"], r["eta_ceiling_flops_per_j"]],
                    color="tab:red", lw=0.6, alpha=0.5)
    stored = doc.get("stored") or []
    if stored:
        ax.scatter([p["t_years"] for p in stored], [p["eta_flops_per_j"] for p in stored],
                   marker="x", color="tab:green", label="your stored runs (measured; x = date run)")
        for p in stored:
            ax.annotate(plain(p["label"] + (" (est.)" if p["estimated"] else "")),
                        (p["t_years"], p["eta_flops_per_j"]), fontsize=6, color="tab:green",
                        xytext=(3, 3), textcoords="offset points")
    ts = [r["t_years"] for r in dev + marks] + [p["t_years"] for p in stored]
    span = [min(ts), max(ts)] if ts else [2017.0, 2025.0]
    if doc.get("hardware_fit"):
        _line(ax, doc["hardware_fit"], span, ls="--", color="tab:blue",
              label=f"hardware rate r = {doc['hardware_fit']['r_per_year']:.3f}/yr")
    if doc.get("realised_fit"):
        f = doc["realised_fit"]
        ci = f" [{f['r_low']:.2f}, {f['r_high']:.2f}]" if f["r_low"] is not None else ""
        _line(ax, f, span, ls="--", color="tab:red", label=f"realised rate r = {f['r_per_year']:.3f}/yr{ci}")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("date (year): device release, run publication, or when your run ran")
    ax.set_ylabel("logical FLOP/J")
    ax.set_title("realised eta of landmark training runs beside the hardware ceiling", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
