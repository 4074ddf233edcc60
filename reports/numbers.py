"""Numbers as text: engineering notation, percentages, and the labels of estimated and missing
values. Every view (terminal, markdown, HTML) formats its numbers here."""

from __future__ import annotations

MISSING = "n/a"


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """``1.23e12`` -> ``1.23 T`` + unit; None -> ``n/a``."""
    if value is None:
        return MISSING
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def estimated(text: str, is_estimated: bool | None) -> str:
    """Append the estimated label to a value that came from an estimate."""
    return f"{text} (estimated)" if is_estimated and text != MISSING else text


def first_line(text: str, limit: int = 300) -> str:
    """The first line of a long message (a traceback, a compiler log), shortened."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."
