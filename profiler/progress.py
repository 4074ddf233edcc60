"""Progress of long work, with the time remaining, for every command that takes a while.

Work reports progress through one callable, ``progress(phase, done, total)``: a bench
variant's phases ("compile", "warmup", "timed", ...), a fit's starting points and bootstrap
refits, a calibration's trials. ``total`` 0 means "size unknown" (one step of unknown length,
such as the first, compiling step). A :class:`ProgressDisplay` shows the events on stderr as
bars with elapsed and remaining time; a worker process (a sweep's variant, a torchrun rank)
writes them as :func:`encode` lines on its stderr and the parent passes the lines it
:func:`decode`\\ s to its own display, so a sweep shows what happens inside each variant.

The time remaining is rich's estimate from the phase's recent rate (none for a phase of
unknown size).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable

#: ``progress(phase, done, total)``.
ProgressFn = Callable[[str, int, int], None]
#: Marks a progress line in a worker's output.
PREFIX = "etameter-progress "


def no_progress(phase: str, done: int, total: int) -> None:
    """The progress callable that shows nothing."""


def encode(phase: str, done: int, total: int) -> str:
    """The line a worker writes for one event."""
    return PREFIX + json.dumps({"phase": phase, "done": done, "total": total})


def decode(line: str) -> tuple[str, int, int] | None:
    """The event in a worker's output line, or None if it is not a progress line."""
    at = line.find(PREFIX)
    if at < 0:
        return None
    try:
        data = json.loads(line[at + len(PREFIX):])
        return str(data["phase"]), int(data["done"]), int(data["total"])
    except (ValueError, KeyError, TypeError):
        return None


class StreamProgress:
    """Writes events as :func:`encode` lines to a stream (a worker's stderr), at most one per
    ``interval_s`` per phase, and always a phase's first and last event."""

    def __init__(self, stream=None, interval_s: float = 0.25):
        self.stream = stream
        self.interval_s = interval_s
        self._last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        edge = done == 0 or done >= total or phase not in self._last
        if not edge and now - self._last[phase] < self.interval_s:
            return
        self._last[phase] = now
        stream = self.stream or sys.stderr
        stream.write(encode(phase, done, total) + "\n")
        stream.flush()


class ProgressDisplay:
    """Progress bars on a rich console (stderr): one per phase, with done/total, elapsed and
    remaining time. ``enabled=False`` shows nothing (``--json`` without ``--progress``)."""

    def __init__(self, console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self._progress = None
        self._tasks: dict[str, int] = {}

    def start(self) -> None:
        if self._progress is not None or not self.enabled:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  TextColumn("left"), TimeRemainingColumn(),
                                  console=self.console, transient=False)
        self._progress.start()

    def note(self, text: str) -> None:
        """A line of text above the bars."""
        if not self.enabled:
            return
        from rich.text import Text

        (self._progress.console if self._progress else self.console).print(Text(text))

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        self.start()
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total or None)
        self._progress.update(self._tasks[phase], completed=done, total=total or None)

    def restart(self, keep: tuple[str, ...] = ()) -> None:
        """Remove the bars of every phase but ``keep`` (a new variant starts its own)."""
        for phase in [p for p in self._tasks if p not in keep]:
            if self._progress is not None:
                self._progress.remove_task(self._tasks[phase])
            del self._tasks[phase]

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "ProgressDisplay":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
