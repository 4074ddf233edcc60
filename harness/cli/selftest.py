"""``etameter selftest``: the whole GPU check list in one command (see harness.selftest)."""

from __future__ import annotations

import click

from harness.cli.options import emit_json, json_option, translate_errors


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for summary.md, summary.json and the runs' database.")
@click.option("--gpu/--dry-run", "gpu", default=True, show_default=True,
              help="--gpu: the full check on a CUDA GPU (under 20 minutes on an H100); "
                   "--dry-run: every step on the CPU at tiny sizes (GPU-only steps skipped).")
@click.option("--db", "db_path", default=None, type=click.Path(dir_okay=False),
              help="Result database (default: OUT/selftest.db).")
@json_option
@translate_errors
def selftest(out_dir, gpu, db_path, as_json):
    """Check every GPU path end to end and write a markdown and a JSON summary."""
    from harness.selftest import SelftestConfig, run_selftest

    summary = run_selftest(SelftestConfig(out_dir, dry_run=not gpu, db_path=db_path),
                           log=lambda line: click.echo(line, err=True))
    if as_json:
        emit_json(summary)
    else:
        for step in summary["steps"]:
            click.echo(f"{step['name']:<15} {step['status']:<8} {step['duration_s']:7.1f} s  "
                       f"{step['reason'] or ''}")
        click.echo(f"summary: {out_dir}/summary.md, {out_dir}/summary.json")
    if not summary["ok"]:
        raise click.ClickException("some selftest steps failed: see the summary")


COMMANDS = (selftest,)
