"""The forecast's figure: the paper's Figure 1 and the burden against the target loss."""

from __future__ import annotations

from reports.plot_style import TICK_PT, figure, plain, set_title, si_axis
from reports.scaling.forecast import figure1_curves, loss_burden_curve, loss_grid
from reports.numbers import si
from reports.scaling.laws import as_compute_law


def forecast_figure(law, eta_flops_per_j: float, estimated: bool = False, years: float = 10.0):
    """Top: relative excess loss over years for several doubling rates, the Moore-like rate
    dashed. Below: energy needed against the target loss at the measured eta."""
    claw = as_compute_law(law)
    fig, axes = figure(2, 1, panel_height_in=3.6)
    ax1, ax2 = axes[:, 0]
    data = figure1_curves(claw.alpha, years)
    for r, values in data["curves"].items():
        moore = r == data["moore_r"]
        ax1.plot(data["years"], values, ls="--" if moore else "-", lw=2 if moore else 1.2,
                 label=f"r = {r:g} doublings/yr" + (" (Moore-like)" if moore else ""))
    si_axis(ax1, "time at a constant energy budget", "years", axis="x")
    si_axis(ax1, "excess loss / excess loss after 1 year at r = 0")
    set_title(ax1, f"relative excess loss over time for several efficiency doubling rates r, "
                   f"alpha = {claw.alpha:.4g} ({law.name})")
    ax1.legend(fontsize=TICK_PT)
    pts = loss_burden_curve(law, eta_flops_per_j, loss_grid(law))
    ax2.plot([p[0] for p in pts], [p[1] for p in pts])
    ax2.set_yscale("log")
    ax2.invert_xaxis()
    si_axis(ax2, "target loss", axis="x")
    ax2.set_ylabel("energy to reach it, J" + (" (estimated)" if estimated else ""),
                   fontsize=ax2.xaxis.label.get_fontsize())  # log ticks: powers of ten
    ax2.tick_params(axis="y", labelsize=TICK_PT)
    set_title(ax2, f"energy burden against the target loss at eta = "
                   f"{si(eta_flops_per_j, 'FLOP/J')}" + (" (estimated)" if estimated else ""))
    return fig


#: Short tick labels of the ledger's terms.
_SHORT = {"hardware": "hardware\npeak", "utilisation": "utilisation\n(MFU)", "power": "power\ndrawn",
          "residual": "residual"}


def ledger_figure(ledgers: list[dict]):
    """A waterfall per ledger: each term's doublings as a step from 0 to the total, with its
    95% interval as an error bar; estimated terms hatched."""
    usable = [d for d in ledgers if d.get("terms")]
    cols = min(2, max(1, len(usable)))
    rows = max(1, -(-len(usable) // cols))
    fig, axes = figure(rows, cols, panel_height_in=3.8)
    for ax in axes.flat[len(usable):]:
        ax.remove()  # an odd number of ledgers: no empty panel
    for ax, doc in zip(axes.flat, usable):
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
        ax.set_xticks(range(len(names)), names, fontsize=TICK_PT)
        ax.margins(y=0.1)
        si_axis(ax, "change of eta", "doublings (log2)")
        set_title(ax, f"{doc['run']['variant']} against {doc['baseline']['variant']}"
                      + (" (hatched: estimated)" if doc["total_estimated"] else ""))
    return fig


def frontier_figure(doc: dict):
    """Each device's eta ceiling over its release date (log2 axis), the fitted line, and the
    measured eta of stored runs beside their device's ceiling."""
    fig, axes = figure(1, 1, panel_height_in=5.0)
    ax = axes[0, 0]
    rows = [r for r in doc["devices"] if r["eta_ceiling_flops_per_j"]]
    ax.scatter([r["t_years"] for r in rows], [r["eta_ceiling_flops_per_j"] for r in rows],
               color="tab:blue", label=f"ceiling: dense {doc['precision']} peak / TDP")
    for r in rows:
        ax.annotate(plain(r["id"].split("-", 1)[-1]), (r["t_years"], r["eta_ceiling_flops_per_j"]),
                    fontsize=6.5, xytext=(3, 3), textcoords="offset points",
                    annotation_clip=False)
    fit = doc.get("fit")
    if fit:
        ts = [min(r["t_years"] for r in rows), max(r["t_years"] for r in rows)]
        ax.plot(ts, [2 ** (fit["a_log2"] + fit["r_per_year"] * (t - fit["t0_year"])) for t in ts],
                "--", color="tab:blue", label=f"fit: r = {fit['r_per_year']:.3f} doublings/yr")
    measured = doc.get("measured", [])
    if measured:
        ax.scatter([m["t_years"] for m in measured], [m["eta_flops_per_j"] for m in measured],
                   marker="x", color="tab:red", label="measured eta (stored runs)")
    ax.margins(x=0.08)  # room for the labels of the first and last devices
    ax.set_yscale("log")  # a straight line in log2 is one in log10 too; ticks in SI prefixes
    si_axis(ax, "eta ceiling or measured eta", "logical FLOP/J")
    si_axis(ax, "release date", "year", axis="x")
    ax.xaxis.set_major_formatter("{x:.0f}")
    set_title(ax, doc["what"])
    ax.legend(fontsize=TICK_PT)
    return fig
