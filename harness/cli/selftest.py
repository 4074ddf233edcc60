"""``etameter selftest``: a budgeted GPU check in one command (see harness.selftest)."""

from __future__ import annotations

import click

from harness.cli.options import SECONDS, emit_json, json_option, translate_errors


@click.command()
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for summary.md, summary.json and the runs' database (not needed "
                   "with --dry-run).")
@click.option("--gpu/--cpu", "gpu", default=True, show_default=True,
              help="--gpu: the check on a CUDA GPU; --cpu: every phase that needs no GPU, "
                   "on the CPU at tiny sizes (the end-to-end check CI runs).")
@click.option("--budget-s", type=SECONDS, default=300.0, show_default=True,
              help="Seconds the whole check may take: phases run in order of value, and one "
                   "whose estimate does not fit what is left is skipped with that reason.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (each phase, its estimate, whether it fits) and run nothing.")
@click.option("--with-tests", is_flag=True,
              help="Also run `pytest -m gpu` (not part of the budgeted check by default).")
@click.option("--db", "db_path", default=None, type=click.Path(dir_okay=False),
              help="Result database (default: OUT/selftest.db).")
@json_option
@translate_errors
def selftest(out_dir, gpu, budget_s, dry_run, with_tests, db_path, as_json):
    """Check a GPU node within a time budget; write a markdown and a JSON summary after
    every phase."""
    from harness.selftest import PHASES, Interrupted, SelftestConfig, plan, run_selftest

    cfg = SelftestConfig(out_dir, gpu=gpu, budget_s=budget_s, with_tests=with_tests,
                         db_path=db_path)
    if dry_run:
        doc = plan(PHASES, cfg)
        if as_json:
            emit_json(doc)
            return
        click.echo(f"selftest plan ({doc['mode']}), budget {doc['budget_s']:.0f} s, "
                   f"{doc['planned_s']:.0f} s planned ({doc['estimate_note']}):")
        for p in doc["phases"]:
            click.echo(f"  {p['name']:<20} ~{p['estimate_s']:5.0f} s  "
                       + ("runs" if p["runs"] else f"skipped: {p['reason']}"))
        return
    try:
        summary = run_selftest(cfg, log=lambda line: click.echo(line, err=True))
    except Interrupted as e:
        raise click.ClickException(f"{e}: {out_dir}/summary.json keeps every finished "
                                   "phase") from None
    if as_json:
        emit_json(summary)
    else:
        for p in summary["phases"]:
            took = "" if p["duration_s"] is None else f"{p['duration_s']:7.1f} s"
            click.echo(f"{p['name']:<20} {p['status']:<10} {took:>9}  {p['reason'] or ''}")
        click.echo(f"summary: {out_dir}/summary.md, {out_dir}/summary.json")
    if not summary["ok"]:
        raise click.ClickException("some selftest phases failed or timed out: see the summary")


COMMANDS = (selftest,)
