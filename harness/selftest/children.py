"""Child processes of the selftest: each in its own process group, killed with it on timeout.

A phase that runs a benchmark starts ``python -m harness.cli ...`` (which may start its own
per-variant workers). The child is the leader of a new session (``start_new_session``), so
its workers are in its process group, and a timeout or an interrupted selftest kills the
whole group: no worker keeps the GPU busy after the selftest has given up on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: After SIGTERM, the group gets this long to record its runs as interrupted before SIGKILL.
TERM_GRACE_S = 5.0
ROOT = Path(__file__).resolve().parent.parent.parent


class ChildTimeout(Exception):
    """A child outran its time; its process group was killed. The message says how long."""


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    def json(self) -> dict:
        """The child's stdout as one JSON document (``--json`` commands)."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise RuntimeError(f"the child printed no JSON (exit {self.returncode}): "
                               f"{(self.stderr or self.stdout)[-1500:]}") from None


def kill_group(proc: subprocess.Popen, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:  # the leader may be gone while its workers are not: kill the group regardless
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def child_env() -> dict:
    """The environment of a child: this checkout first on PYTHONPATH (a kit folder the
    parent runs with stays on it), unbuffered output."""
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in parts:
        parts.append(str(ROOT))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_child(argv: list[str], timeout_s: float, on_start=None) -> ChildResult:
    """Run ``argv`` in a new process group with at most ``timeout_s`` seconds; raise
    ChildTimeout (after killing the group) when it runs out. ``on_start(proc)`` is called
    once the child runs (the selftest keeps it to kill the group if it is interrupted)."""
    if timeout_s <= 0:
        raise ChildTimeout("no time left in the budget to start it")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env=child_env(),
                                start_new_session=True)
        try:
            if on_start is not None:
                on_start(proc)
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise ChildTimeout(f"killed with its process group after {timeout_s:.0f} s "
                               "(the time left in the budget)") from None
        except BaseException:
            kill_group(proc)
            raise
        finally:
            if on_start is not None:
                on_start(None)
        out.seek(0)
        err.seek(0)
        return ChildResult(returncode, out.read(), err.read(), time.monotonic() - t0)


def etameter(*args: str) -> list[str]:
    """The argv of an etameter command run from this checkout."""
    return [sys.executable, "-m", "harness.cli", *args]
