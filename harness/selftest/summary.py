"""The selftest's summary: written atomically after every phase, so whatever kills the command,
every finished phase is on disk (``summary.json`` and ``summary.md``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

#: The note every summary carries about the NVML counter-vs-integral figure.
CONSISTENCY_NOTE = (
    "NVML's energy counter (nvmlDeviceGetTotalEnergyConsumption) and its power readings come "
    "from the same sensor, so their agreement is a consistency check of the sampling, not a "
    "measure of accuracy: an external power meter would be needed for that.")
ESTIMATE_NOTE = ("phase estimates are planning figures (seconds on one H100/H200-class GPU, or "
                 "this project's 2-core CPU machines for --cpu), not measurements; each phase's "
                 "duration_s is the measured time")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader (or a kill)
    sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_summary(out_dir: str, summary: dict) -> None:
    """``summary.json`` and ``summary.md`` in ``out_dir``, each replaced atomically."""
    out = Path(out_dir)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    write_atomic(out / "summary.md", markdown(summary))


def markdown(summary: dict) -> str:
    """The summary as a short markdown page: one row per phase, then each phase's figures."""
    device = summary.get("device") or {}
    state = ("in progress" if summary.get("in_progress") else
             "all phases ok or skipped" if summary["ok"] else "SOME PHASES FAILED")
    lines = [f"# etameter selftest ({summary['mode']})", "",
             f"- device: {device.get('name')} ({device.get('type')}), profile "
             f"{device.get('profile') or 'none'}"
             + (f": {device['profile_reason']}" if device.get("profile_reason") else ""),
             f"- torch {summary['torch']}; budget {summary['budget_s']:.0f} s, "
             f"{summary['duration_s']:.0f} s used; {state}",
             f"- {summary['consistency_note']}", f"- {summary['estimate_note']}", "",
             "| phase | status | estimate s | s | reason |", "| --- | --- | --- | --- | --- |"]
    for p in summary["phases"]:
        reason = (p.get("reason") or "").replace("|", "/").replace("\n", " ")[:200]
        took = "" if p.get("duration_s") is None else f"{p['duration_s']:.1f}"
        lines.append(f"| {p['name']} | {p['status']} | {p['estimate_s']:.0f} | {took} | {reason} |")
    for p in summary["phases"]:
        if p["status"] == "ok" and p.get("data"):
            lines += ["", f"## {p['name']}", "", "```json",
                      json.dumps(p["data"], indent=1, default=str)[:6000], "```"]
    return "\n".join(lines) + "\n"
