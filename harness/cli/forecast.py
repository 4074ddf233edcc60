"""The forecast command: a measured eta turned into the burden of reaching a loss."""

from __future__ import annotations

import click

from harness.cli.options import db_option, echo_lines, emit_json, json_option, translate_errors


@click.command()
@click.option("--law", default="chinchilla", show_default=True,
              help="kaplan, chinchilla, chinchilla-unrounded or epoch-2024.")
@click.option("--law-constants", default=None,
              help="Your own law: 'l_inf=..,a=..,alpha=..' (compute law) or "
                   "'e_irr=..,a_coef=..,b_coef=..,a=..,b=..' (Chinchilla form).")
@click.option("--fit", "fit_file", type=click.Path(dir_okay=False), default=None,
              help="Fit the law to your points: a CSV with columns C,L or N,D,L.")
@click.option("--bootstrap", type=int, default=50, show_default=True,
              help="With --fit: bootstrap resamples for 95%% intervals.")
@click.option("--target-loss", type=float, default=None, help="The loss to reach.")
@click.option("--compute", "compute_flop", type=float, default=None, help="Or: logical compute, FLOP.")
@click.option("--params", "n_params", type=float, default=None, help="Or: N parameters (with --tokens).")
@click.option("--tokens", "n_tokens", type=float, default=None, help="D training tokens (with --params).")
@click.option("--eta", type=float, default=None, help="Logical FLOP per joule.")
@click.option("--run", "run_id", default=None, help="Or: the eta of this stored run (id or prefix).")
@click.option("--device", "device_filter", default=None,
              help="Or: the best ok run on this device (part of its name)...")
@click.option("--variant", default=None, help="...and/or of this variant.")
@click.option("--allow-estimated", is_flag=True, help="Accept an estimated eta (kept labelled).")
@click.option("--power-w", type=float, default=None, help="Power per device, W.")
@click.option("--devices", type=int, default=1, show_default=True, help="Devices working at once.")
@click.option("--mfu", type=float, default=None, help="MFU for the time-from-throughput figure.")
@click.option("--peak-tflops", type=float, default=None, help="Dense peak per device, TFLOP/s.")
@click.option("--budget-j-per-year", type=float, default=None, help="Physical energy budget, J/yr.")
@click.option("--years", type=float, default=None, help="Horizon, years.")
@click.option("--doublings-per-year", type=float, default=None, help="Efficiency doubling rate r.")
@click.option("--price-per-kwh", type=float, default=None, help="Energy price, per kWh.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write Figure 1 and the burden curve (.png or .svg).")
@db_option
@json_option
@translate_errors
def forecast(law, law_constants, fit_file, bootstrap, eta, run_id, device_filter, variant,
             peak_tflops, plot_file, db_path, as_json, **kwargs):
    """Turn a measured eta into the burden of reaching a loss: compute, energy, time, doublings."""
    from reports.scaling.forecast import choose_law, eta_from_store, given_eta
    from reports.scaling.forecast import forecast as run_forecast
    from reports.scaling.text import forecast_lines

    chosen_law, fit_doc = choose_law(law, law_constants, fit_file, bootstrap)
    if eta is not None:
        source = given_eta(eta, run_id=run_id, device=device_filter, variant=variant)
    else:
        from profiler.store import Store

        source = eta_from_store(Store(db_path), run_id=run_id, device=device_filter, variant=variant)
    doc = run_forecast(chosen_law, source, peak_flops_per_s=peak_tflops * 1e12 if peak_tflops else None,
                       **kwargs)
    if fit_doc:
        doc["fit"] = fit_doc
    if plot_file:
        from reports.plots import save
        from reports.scaling.plot import forecast_figure

        save(forecast_figure(chosen_law, source.eta_flops_per_j, source.estimated), plot_file)
        doc["plot"] = plot_file
    if as_json:
        emit_json(doc)
    else:
        echo_lines(forecast_lines(doc))


COMMANDS = (forecast,)
