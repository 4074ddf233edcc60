"""The ``etameter`` command line: a thin layer over the library.

Each command parses its options, calls the library and prints. Commands that report numbers
take ``--json`` and then print exactly one JSON document on stdout; progress and logs go to
stderr. Library errors become one-line messages (``options.translate_errors``).

One module per group of commands: ``bench`` (bench, overhead, flops, mfu, presets),
``results`` (report, compare, plot, export, import, merge, delete), ``hardware`` (devices, calibrate,
meters), ``forecast``, ``efficiency`` (ledger, frontier) and ``history`` (landmark runs); ``options`` holds what they share.
"""

from __future__ import annotations

import click

from harness.cli import bench, efficiency, forecast, hardware, history, results, selftest


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="etameter")
def cli():
    """etameter: how efficiently does this machine turn joules into model work?

    Measures time, throughput and energy of a dense reference transformer and reports logical
    FLOPs, MFU and eta (logical FLOPs per joule). Results are stored in SQLite.
    """


for _module in (bench, results, hardware, forecast, efficiency, history, selftest):
    for _command in _module.COMMANDS:
        cli.add_command(_command)

__all__ = ["cli"]
