"""Commands about this machine: devices, calibrate, meters."""

from __future__ import annotations

import os

import click

from harness.cli.options import (COUNT, WATTS, db_option, echo_lines, emit_json, json_option,
                                 profile_option, progress_display, progress_option, read_store,
                                 translate_errors)


@click.command()
@click.option("--precision", "precisions", multiple=True,
              type=click.Choice(["fp32", "tf32", "bf16", "fp16", "fp8"]),
              help="Precision to measure (repeatable; default: every one the device runs).")
@click.option("--repeats", type=COUNT, default=5, show_default=True, help="Timed trials per ceiling.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Which device to calibrate.")
@profile_option
@db_option
@json_option
@progress_option
@translate_errors
def calibrate(precisions, repeats, device, profile_files, db_path, as_json, show_progress):
    """Measure the device's matmul FLOP/s per precision and copy bandwidth; store them (a
    ceiling whose trials disagree is stored flagged noisy and not used for MFU)."""
    from hardware_profiles.calibrate import (CalibrationConfig, calibrate as run_calibration,
                                             compare_with_datasheet)
    from hardware_profiles.device import resolve_device
    from profiler.environment import collect_environment
    from profiler.store import Store
    from reports.text import calibration_lines

    ctx = resolve_device(device, tuple(profile_files))
    store = Store(db_path)
    with progress_display(show_progress, as_json) as display:
        result = run_calibration(ctx.torch_device, ctx.synchronize,
                                 CalibrationConfig(precisions=tuple(precisions) or None,
                                                   repeats=repeats), progress=display)
    env = collect_environment(ctx.type)
    for r in result["results"]:  # stored as measured, before the comparison is added
        r["calibration_id"] = store.add_calibration(
            device_key=ctx.key, device_name=ctx.name, device_type=ctx.type,
            profile_id=ctx.profile_id, result=r, environment=env)
    rows = compare_with_datasheet(ctx, result["results"])
    doc = {"device": ctx.describe(), "db": db_path, "ceilings": rows, "skipped": result["skipped"]}
    for r in rows:  # what a run will use: the best steady ceiling, perhaps an earlier one
        used = store.best_ceiling(ctx.key, r["kind"], r["precision"])
        r["used_for_mfu"] = used is not None and used["id"] == r["calibration_id"]
        r["ceiling_in_use"] = None if used is None else {k: used[k] for k in ("id", "value", "created_at")}
    if as_json:
        emit_json(doc)
    else:
        echo_lines(calibration_lines(doc))


@click.command()
@profile_option
@db_option
@json_option
@translate_errors
def devices(profile_files, db_path, as_json):
    """Detected devices, the profile each matched and why, their peaks and ceilings."""
    from hardware_profiles.report import devices_document
    from reports.text import devices_lines

    store = read_store(db_path) if os.path.exists(db_path) else None
    docs = devices_document(tuple(profile_files), store)
    if as_json:
        emit_json({"devices": docs})
    else:
        echo_lines(devices_lines(docs))


@click.command()
@click.option("--cpu-tdp-w", type=WATTS, default=None,
              help="Full-load power of the CPU cores (W) for the estimate meter.")
@profile_option
@json_option
@translate_errors
def meters(cpu_tdp_w, profile_files, as_json):
    """Every power meter etameter knows: available here or not, why, and what it sees."""
    from hardware_profiles.device import all_devices, meter_requests
    from profiler.meters.select import probe_meters
    from reports.text import meters_lines

    report = probe_meters(meter_requests(all_devices(tuple(profile_files)), cpu_tdp_w))
    if as_json:
        emit_json({"meters": report})
    else:
        echo_lines(meters_lines(report))


COMMANDS = (calibrate, devices, meters)
