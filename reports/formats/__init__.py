"""The formats of ``etameter report``, as a registry.

A format module registers a :class:`ReportFormat` when it is imported: its name (the value of
``--format``) and ``render(runs, store) -> str``, the whole text to write on stdout, or
``stream(runs, store)``, the same text in pieces from an iterable of runs, so memory does not
grow with their number. ``BUILTIN``
names the modules of the built-in formats; adding a format is a new module in this package
plus one line there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

#: Modules that register the built-in formats, in the order ``names()`` lists them.
BUILTIN = (
    "reports.formats.table",
    "reports.formats.markdown",
    "reports.formats.csv",
    "reports.formats.json",
    "reports.formats.html",
)


@dataclass(frozen=True)
class ReportFormat:
    """A registered format: ``render(runs, store)`` gives the text of the report (with its
    final newline) for the selected runs of ``store`` (a profiler.store.Store)."""

    name: str
    render: Callable[[list[dict], object], str]
    description: str = ""
    #: ``render`` with every column (``etameter report --wide``), where the format leaves
    #: some out by default to fit the terminal; None where it always shows them all.
    render_wide: Callable[[list[dict], object], str] | None = None
    #: The text in pieces, from runs read one at a time (None: ``render`` the whole list).
    stream: Callable[[Iterable[dict], object], Iterator[str]] | None = None
    #: Whether the runs must carry their windows (``results``).
    with_results: bool = False
    #: A view for people: ``etameter report`` shows the latest runs only unless asked for all.
    bounded: bool = True


_FORMATS: dict[str, ReportFormat] = {}
_loaded = False


def register(fmt: ReportFormat) -> ReportFormat:
    """Add (or replace, by name) a format."""
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            importlib.import_module(module)


def names() -> tuple[str, ...]:
    """Every registered format's name."""
    _load_builtin()
    return tuple(_FORMATS)


def get(name: str) -> ReportFormat:
    """The format registered as ``name``."""
    _load_builtin()
    try:
        return _FORMATS[name]
    except KeyError:
        from profiler.errors import ConfigError

        raise ConfigError(f"unknown report format {name!r}: choose {', '.join(_FORMATS)}") from None


def render(name: str, runs: list[dict], store, wide: bool = False) -> str:
    """The report of ``runs`` in the format ``name`` (with every column, ``wide``)."""
    fmt = get(name)
    return (fmt.render_wide if wide and fmt.render_wide else fmt.render)(runs, store)


def chunks(name: str, runs: Iterable[dict], store, wide: bool = False) -> Iterator[str]:
    """The report of ``runs`` in the format ``name``, in pieces: streamed where the format
    streams, else rendered whole (with every column, ``wide``)."""
    fmt = get(name)
    if fmt.stream is not None:
        yield from fmt.stream(runs, store)
    else:
        yield render(name, list(runs), store, wide)
