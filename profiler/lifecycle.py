"""A run's process and its ending: SIGTERM and SIGHUP end a run like Ctrl-C, a worker dies with
the process that started it, and a run's process is known to be alive or not.

- :func:`stop_signals_interrupt` turns SIGTERM and SIGHUP into :class:`Terminated` (a
  ``KeyboardInterrupt``) in the main thread, so every path that records Ctrl-C as
  ``interrupted`` records a ``kill`` (or a closed terminal, or a scheduler's stop) the same
  way; :func:`interrupt_reason` says which it was.
- :func:`die_with_parent` makes this process receive SIGTERM when its parent dies (Linux
  ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread watching the parent's pid), so a sweep's
  worker never outlives a parent killed even with SIGKILL.
- :func:`run_process_alive` tells whether a stored ``running`` run's process (its pid, on this
  host, started no later than the run) still exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime

#: The signals that stop a run like Ctrl-C does (SIGHUP: the terminal closed).
STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                     if s is not None)
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP); handled like Ctrl-C."""

    def __init__(self, signum: int, parent_gone: bool = False):
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.parent_gone = parent_gone
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


def interrupt_reason(exc: BaseException | None) -> str:
    """The error text of an interrupted run: which signal, or Ctrl-C."""
    if isinstance(exc, Terminated):
        if exc.parent_gone:
            return (f"interrupted: the process that started this worker ended ({exc.signal_name} "
                    "on its parent's death)")
        return f"interrupted by {exc.signal_name} (the process was asked to stop)"
    return "interrupted by the user (Ctrl-C)"


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 128 + N for signal N."""
    return exc.exit_code if isinstance(exc, Terminated) else 130


@contextlib.contextmanager
def stop_signals_interrupt(parent_pid: int | None = None):
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (once:
    a second signal while the first is being recorded is ignored, so the ending is written).
    ``parent_pid``: the parent this process was started by (its death is named as such).
    Outside the main thread, nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        raise Terminated(signum, parent_gone=_parent_gone(parent_pid))

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _parent_gone(parent_pid: int | None, wait_s: float = 0.2) -> bool:
    """Whether the parent has died: the death signal can arrive just before the process is
    re-parented, so the parent pid is read again for a moment."""
    if parent_pid is None:
        return False
    deadline = time.monotonic() + wait_s
    while os.getppid() == parent_pid:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def die_with_parent(parent_pid: int) -> None:
    """Receive SIGTERM when the parent ``parent_pid`` dies (handled by
    :func:`stop_signals_interrupt` as an interruption). If it is already gone, SIGTERM now."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # it died before prctl took effect
                    os.kill(os.getpid(), signal.SIGTERM)
                return
        except (OSError, AttributeError):
            pass
    _watch_parent(parent_pid)


def _watch_parent(parent_pid: int, period_s: float = 1.0) -> None:
    """Where prctl is missing: a daemon thread that sends SIGTERM to this process once its
    parent has changed (the parent died and the process was re-parented)."""
    def watch():
        stop = threading.Event()
        while not stop.wait(period_s):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="etameter-parent-watch", daemon=True).start()


def run_process_alive(run: dict) -> bool:
    """Whether a stored run's process is alive on this host: its pid exists, and that
    process started no later than the run (a pid reused by a newer process is not it).
    False for runs of other hosts, or without a pid."""
    pid, host = run.get("pid"), run.get("host")
    if not pid or host != socket.gethostname():
        return False
    import psutil

    try:
        created = psutil.Process(int(pid)).create_time()
    except (psutil.Error, ValueError, OverflowError):
        return False
    try:
        started = datetime.fromisoformat(str(run.get("started_at"))).timestamp()
    except ValueError:
        return True  # no start time to compare with: the pid is alive
    return created <= started + 1.0
