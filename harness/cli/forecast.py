"""The forecast command: a measured eta turned into the burden of reaching a loss."""

from __future__ import annotations

import math

import click

from hardware_profiles.profiles import PRECISIONS
from harness.cli.options import (COUNT, FRACTION, POSITIVE, TFLOPS, WATTS, Number, db_option,
                                 echo_lines, emit_json, force_option, json_option,
                                 progress_display, progress_option, read_store, translate_errors)


class LawConstants(click.ParamType):
    """``--law-constants``: name=value pairs, each value a finite number (the law checks the
    names and signs)."""

    name = "constants"

    def convert(self, value, param, ctx):
        for pair in str(value).split(","):
            key, _, number = pair.partition("=")
            try:
                finite = math.isfinite(float(number))
            except ValueError:
                self.fail(f"write name=value pairs separated by commas, got {pair!r}", param, ctx)
            if not finite:
                self.fail(f"{key.strip()} must be a finite number, got {number.strip()}", param, ctx)
        return value


class DoublingRate(click.ParamType):
    """``--doublings-per-year``: a number must be finite and in [-10, 10]; any other text goes
    to the library, which takes 'frontier', 'runs' or 'realised' and names them otherwise."""

    name = "rate"
    NUMBER = Number(-10, 10)

    def convert(self, value, param, ctx):
        try:
            float(value)
        except (TypeError, ValueError):
            return value
        return self.NUMBER.convert(value, param, ctx)


@click.command()
@click.option("--law", default="chinchilla", show_default=True,
              help="kaplan, chinchilla, chinchilla-unrounded or epoch-2024.")
@click.option("--law-constants", type=LawConstants(), default=None,
              help="Your own law: 'l_inf=..,a=..,alpha=..' (compute law) or "
                   "'e_irr=..,a_coef=..,b_coef=..,a=..,b=..' (Chinchilla form).")
@click.option("--fit", "fit_file", type=click.Path(dir_okay=False), default=None,
              help="Fit the law to your points: a CSV with columns C,L or N,D,L.")
@click.option("--bootstrap", type=Number(0, 10000, integer=True), default=50, show_default=True,
              help="With --fit: bootstrap resamples for 95%% intervals.")
@click.option("--target-loss", type=POSITIVE, default=None, help="The loss to reach.")
@click.option("--compute", "compute_flop", type=POSITIVE, default=None, help="Or: logical compute, FLOP.")
@click.option("--params", "n_params", type=POSITIVE, default=None, help="Or: N parameters (with --tokens).")
@click.option("--tokens", "n_tokens", type=POSITIVE, default=None, help="D training tokens (with --params).")
@click.option("--eta", type=POSITIVE, default=None, help="Logical FLOP per joule.")
@click.option("--run", "run_id", default=None, help="Or: the eta of this stored run (id or prefix).")
@click.option("--device", "device_filter", default=None,
              help="Or: the best ok run on this device (part of its name)...")
@click.option("--variant", default=None, help="...and/or of this variant.")
@click.option("--allow-estimated", is_flag=True, help="Accept an estimated eta (kept labelled).")
@click.option("--allow-non-train", is_flag=True,
              help="Accept the eta of a prefill or decode run for the training target (said so).")
@click.option("--power-w", type=WATTS, default=None, help="Power per device, W.")
@click.option("--devices", type=COUNT, default=1, show_default=True, help="Devices working at once.")
@click.option("--mfu", type=FRACTION, default=None, help="MFU for the time-from-throughput figure.")
@click.option("--peak-tflops", type=TFLOPS, default=None, help="Dense peak per device, TFLOP/s.")
@click.option("--budget-j-per-year", type=POSITIVE, default=None, help="Physical energy budget, J/yr.")
@click.option("--years", type=Number(0, 1e4, min_open=True), default=None, help="Horizon, years.")
@click.option("--doublings-per-year", "rate_spec", type=DoublingRate(), default=None,
              help="Efficiency doubling rate r: a number, 'frontier' (the fitted hardware rate "
                   "of the device profiles, with its interval) or 'runs' (fitted from your stored "
                   "runs over their devices' release dates) or 'realised' (fitted over the "
                   "landmark training runs of `etameter history`).")
@click.option("--frontier-precision", type=click.Choice(PRECISIONS), default=None,
              help="With --doublings-per-year frontier: the peaks' precision (default: the "
                   "precision the run computed in; bf16 with --eta).")
@click.option("--price-per-kwh", type=Number(0, 1e6), default=None, help="Energy price, per kWh.")
@click.option("--currency", default=None,
              help="Currency code of --price-per-kwh (e.g. USD), printed with the cost.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write Figure 1 and the burden curve (.png or .svg).")
@force_option
@db_option
@json_option
@progress_option
@translate_errors
def forecast(law, law_constants, fit_file, bootstrap, eta, run_id, device_filter, variant,
             peak_tflops, plot_file, force, db_path, as_json, show_progress, rate_spec,
             frontier_precision, allow_non_train, **kwargs):
    """Turn a measured eta into the burden of reaching a loss: compute, energy, time, doublings."""
    from reports.scaling.forecast import choose_law, doubling_rate, eta_from_store, given_eta
    from reports.scaling.forecast import forecast as run_forecast
    from reports.scaling.text import forecast_lines

    if plot_file:
        from profiler.files import check_output_path

        check_output_path(plot_file, force=force, protected=(db_path,), what="plot file")
    with progress_display(show_progress, as_json) as display:
        chosen_law, fit_doc = choose_law(law, law_constants, fit_file, bootstrap, display)
    if eta is not None:
        source = given_eta(eta, run_id=run_id, device=device_filter, variant=variant)
    else:
        source = eta_from_store(read_store(db_path), run_id=run_id, device=device_filter,
                                variant=variant, allow_non_train=allow_non_train)
    if rate_spec == "runs":
        read_store(db_path).close()  # a missing database is an error, never a new empty file
    number, rate = doubling_rate(rate_spec, frontier_precision, db_path,
                                 kwargs.get("allow_estimated", False), source)
    doc = run_forecast(chosen_law, source, peak_flops_per_s=peak_tflops * 1e12 if peak_tflops else None,
                       doublings_per_year=number, rate=rate, **kwargs)
    if fit_doc:
        doc["fit"] = fit_doc
    if plot_file:
        from reports.plots import save
        from reports.scaling.plot import forecast_figure

        save(forecast_figure(chosen_law, source.eta_flops_per_j, source.estimated), plot_file,
             force=force, protected=(db_path,))
        doc["plot"] = plot_file
        click.echo(f"wrote {plot_file}", err=True)
    if as_json:
        emit_json(doc)
    else:
        echo_lines(forecast_lines(doc))
        if fit_doc:
            from reports.scaling.fit import fit_lines

            echo_lines(fit_lines(fit_doc))


COMMANDS = (forecast,)
