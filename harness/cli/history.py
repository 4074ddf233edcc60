"""The history command: realised eta of landmark training runs beside the hardware ceiling."""

from __future__ import annotations

import os

import click

from hardware_profiles.profiles import PRECISIONS
from harness.cli.options import (db_option, echo_lines, emit_json, force_option, json_option,
                                 profile_option, read_store, translate_errors)


@click.command()
@click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True,
              help="The precision of the hardware frontier's rate (each landmark's own ceiling "
                   "is at its own precision).")
@click.option("--from", "from_id", default=None,
              help="Ledger from this landmark id (or stored run id/prefix)...")
@click.option("--to", "to_id", default=None, help="...to this one: the gain split into hardware "
              "ceiling and realised share.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write the ceilings, landmark runs and your runs on one log axis (.png or .svg).")
@force_option
@profile_option
@db_option
@json_option
@translate_errors
def history(precision, from_id, to_id, plot_file, force, profile_files, db_path, as_json):
    """Realised eta of landmark training runs (sourced data), the share of their hardware
    ceiling, and the realised doubling rate beside the hardware rate."""
    from hardware_profiles.profiles import load_profiles
    from profiler.errors import ConfigError
    from profiler.files import check_output_path
    from reports.scaling.history import history as build, landmark_ledger, resolve_point
    from reports.scaling.history_text import history_lines, landmark_ledger_lines

    if (from_id is None) != (to_id is None):
        raise ConfigError("give --from and --to together (landmark ids or stored run ids)")
    if plot_file:
        check_output_path(plot_file, force=force, protected=(db_path,), what="plot file")
    profiles = load_profiles(profile_files)
    store = read_store(db_path) if os.path.exists(db_path) else None
    doc = build(profiles, store.runs("ok") if store else None, precision)
    if from_id is not None:
        doc["ledger"] = landmark_ledger(resolve_point(from_id, profiles, store),
                                        resolve_point(to_id, profiles, store))
    if plot_file:
        from reports.plots import save
        from reports.scaling.history_plot import history_figure

        save(history_figure(doc), plot_file, force=force, protected=(db_path,))
        doc["plot"] = plot_file
    if as_json:
        emit_json(doc)
        return
    echo_lines(history_lines(doc))
    if doc.get("ledger"):
        echo_lines(landmark_ledger_lines(doc["ledger"]))


COMMANDS = (history,)
