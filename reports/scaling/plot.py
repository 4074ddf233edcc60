"""The forecast's figure: the paper's Figure 1 and the burden against the target loss."""

from __future__ import annotations

from reports.plots import _pyplot, plain
from reports.scaling.forecast import figure1_curves, loss_burden_curve, loss_grid
from reports.scaling.laws import as_compute_law


def forecast_figure(law, eta_flops_per_j: float, estimated: bool = False, years: float = 10.0):
    """Left: relative excess loss over years for several doubling rates, the Moore-like rate
    dashed. Right: energy needed against the target loss at the measured eta."""
    plt = _pyplot()
    claw = as_compute_law(law)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    data = figure1_curves(claw.alpha, years)
    for r, values in data["curves"].items():
        moore = r == data["moore_r"]
        ax1.plot(data["years"], values, ls="--" if moore else "-", lw=2 if moore else 1.2,
                 label=f"r = {r:g} doublings/yr" + (" (Moore-like)" if moore else ""))
    ax1.set_xlabel("years")
    ax1.set_ylabel("excess loss / excess loss after 1 year at r = 0")
    ax1.set_title(f"relative excess loss, alpha = {claw.alpha:.4g} ({law.name})")
    ax1.legend(fontsize=8)
    pts = loss_burden_curve(law, eta_flops_per_j, loss_grid(law))
    ax2.plot([p[0] for p in pts], [p[1] for p in pts])
    ax2.set_yscale("log")
    ax2.invert_xaxis()
    ax2.set_xlabel("target loss")
    ax2.set_ylabel("energy, J" + (" (estimated)" if estimated else ""))
    ax2.set_title(f"burden at eta = {eta_flops_per_j:.3g} FLOP/J" + (" (estimated)" if estimated else ""))
    fig.tight_layout()
    return fig


#: Short tick labels of the ledger's terms.
_SHORT = {"hardware": "hardware\npeak", "utilisation": "utilisation\n(MFU)", "power": "power\ndrawn",
          "residual": "residual"}


def ledger_figure(ledgers: list[dict]):
    """A waterfall per ledger: each term's doublings as a step from 0 to the total, with its
    95% interval as an error bar; estimated terms hatched."""
    plt = _pyplot()
    usable = [d for d in ledgers if d.get("terms")]
    fig, axes = plt.subplots(1, max(1, len(usable)), figsize=(4.2 * max(1, len(usable)), 4.2),
                             squeeze=False)
    for ax, doc in zip(axes[0], usable):
        level = 0.0
        names = [_SHORT.get(t["key"], t["key"]) for t in doc["terms"]] + ["total"]
        for i, term in enumerate(doc["terms"]):
            v = term["doublings"]
            err = None
            if term["ci_low"] is not None:
                err = [[v - term["ci_low"]], [term["ci_high"] - v]]
            ax.bar(i, v, bottom=level, color="tab:green" if v >= 0 else "tab:red",
                   hatch="//" if term["estimated"] else None, edgecolor="black", lw=0.5)
            if err:
                ax.errorbar(i, level + v, yerr=err, color="black", capsize=3, lw=1)
            level += v
        total = doc["total_doublings"]
        ci = doc["total_interval"]
        ax.bar(len(doc["terms"]), total, color="tab:blue",
               hatch="//" if doc["total_estimated"] else None, edgecolor="black", lw=0.5)
        if ci:
            ax.errorbar(len(doc["terms"]), total, yerr=[[total - ci[0]], [ci[1] - total]],
                        color="black", capsize=3, lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.margins(y=0.1)
        ax.set_ylabel("doublings of eta (log2)")
        ax.set_title(plain(f"{doc['run']['variant']} vs {doc['baseline']['variant']}")
                     + (" (hatched: estimated)" if doc["total_estimated"] else ""), fontsize=9)
    fig.tight_layout()
    return fig


def frontier_figure(doc: dict):
    """Each device's eta ceiling over its release date (log2 axis), the fitted line, and the
    measured eta of stored runs beside their device's ceiling."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    rows = [r for r in doc["devices"] if r["eta_ceiling_flops_per_j"]]
    ax.scatter([r["t_years"] for r in rows], [r["eta_ceiling_flops_per_j"] for r in rows],
               color="tab:blue", label=f"ceiling: dense {doc['precision']} peak / TDP")
    for r in rows:
        ax.annotate(r["id"].split("-", 1)[-1], (r["t_years"], r["eta_ceiling_flops_per_j"]),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    fit = doc.get("fit")
    if fit:
        ts = [min(r["t_years"] for r in rows), max(r["t_years"] for r in rows)]
        ax.plot(ts, [2 ** (fit["a_log2"] + fit["r_per_year"] * (t - fit["t0_year"])) for t in ts],
                "--", color="tab:blue", label=f"fit: r = {fit['r_per_year']:.3f} doublings/yr")
    measured = doc.get("measured", [])
    if measured:
        ax.scatter([m["t_years"] for m in measured], [m["eta_flops_per_j"] for m in measured],
                   marker="x", color="tab:red", label="measured eta (stored runs)")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("release date (year)")
    ax.set_ylabel("logical FLOP/J")
    ax.set_title(doc["what"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
