"""The forecast's figure: the paper's Figure 1 and the burden against the target loss."""

from __future__ import annotations

from reports.plots import _pyplot
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
