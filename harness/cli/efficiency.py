"""Where eta comes from and how fast it grows, and how it holds as nodes are added: the
``ledger``, ``frontier`` and ``scaling`` commands."""

from __future__ import annotations

import os

import click

from hardware_profiles.profiles import PRECISIONS
from harness.cli.options import (db_option, echo_lines, emit_json, force_option, json_option,
                                 profile_option, read_store, translate_errors)


@click.command()
@click.option("--baseline", default=None, help="The baseline run (id or prefix).")
@click.option("--run", "run_id", default=None, help="The run to explain against it (id or prefix).")
@click.option("--sweep", default=None,
              help="Or: any run of a sweep; every run of that sweep against its first run.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write a waterfall of the terms (.png or .svg).")
@force_option
@db_option
@json_option
@translate_errors
def ledger(baseline, run_id, sweep, plot_file, force, db_path, as_json):
    """Split an eta gain between runs of the same logical work into doublings from the
    hardware peak, utilisation (logical MFU) and power drawn."""
    from profiler.files import check_output_path
    from reports.scaling.efficiency_text import ledger_lines, sweep_ledger_lines
    from reports.scaling.ledger import ledger_from_store

    if plot_file:
        check_output_path(plot_file, force=force, protected=(db_path,), what="plot file")
    doc = ledger_from_store(read_store(db_path), baseline, run_id, sweep)
    if plot_file:
        from reports.plots import save
        from reports.scaling.plot import ledger_figure

        save(ledger_figure(doc["ledgers"] if doc["kind"] == "sweep" else [doc]), plot_file,
             force=force, protected=(db_path,))
        doc["plot"] = plot_file
        click.echo(f"wrote {plot_file}", err=True)
    if as_json:
        emit_json(doc)
    else:
        echo_lines(sweep_ledger_lines(doc) if doc["kind"] == "sweep" else ledger_lines(doc))


@click.command()
@click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True,
              help="The precision of the dense peaks.")
@click.option("--vendor", "vendors", multiple=True, help="Only this vendor's devices; repeatable.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write the ceilings, the fit and the measured runs (.png or .svg).")
@force_option
@profile_option
@db_option
@json_option
@translate_errors
def frontier(precision, vendors, plot_file, force, profile_files, db_path, as_json):
    """The hardware efficiency frontier: peak per watt at TDP over release date, and the
    fitted doubling rate r per year with its interval."""
    from hardware_profiles.profiles import load_profiles
    from profiler.files import check_output_path
    from reports.scaling.efficiency_text import frontier_lines
    from reports.scaling.frontier import frontier_with_runs

    if plot_file:
        check_output_path(plot_file, force=force, protected=(db_path,), what="plot file")
    runs = read_store(db_path).runs("ok") if os.path.exists(db_path) else None
    doc = frontier_with_runs(load_profiles(profile_files), runs, precision, tuple(vendors))
    if plot_file:
        from reports.plots import save
        from reports.scaling.plot import frontier_figure

        save(frontier_figure(doc), plot_file, force=force, protected=(db_path,))
        doc["plot"] = plot_file
        click.echo(f"wrote {plot_file}", err=True)
    if as_json:
        emit_json(doc)
    else:
        echo_lines(frontier_lines(doc))


@click.command()
@click.option("--preset", default=None, help="Only runs of this preset.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@click.option("--variant", default=None, help="Only runs of this variant.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write the efficiency against devices, with intervals (.png or .svg).")
@force_option
@db_option
@json_option
@translate_errors
def scaling(preset, scenario, variant, plot_file, force, db_path, as_json):
    """Weak scaling over runs of one workload at 1, 2, ... nodes (or ranks): per-device
    tokens/s, MFU and eta with 95% intervals, and the efficiency against the smallest run."""
    from profiler.files import check_output_path
    from reports.node_scaling import scaling_document, scaling_lines

    if plot_file:
        check_output_path(plot_file, force=force, protected=(db_path,), what="plot file")
    runs = read_store(db_path).runs("ok", preset=preset, scenario=scenario, variant=variant)
    doc = scaling_document(runs)
    if plot_file:
        from reports.node_scaling import scaling_figure
        from reports.plots import save

        save(scaling_figure(doc), plot_file, force=force, protected=(db_path,))
        doc["plot"] = plot_file
    if as_json:
        emit_json(doc)
    else:
        echo_lines(scaling_lines(doc))


COMMANDS = (ledger, frontier, scaling)
