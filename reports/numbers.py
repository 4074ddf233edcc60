"""Numbers as text: engineering notation, percentages, and the labels of estimated and missing
values. Every view (terminal, markdown, HTML) formats its numbers here."""

from __future__ import annotations

MISSING = "n/a"


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """``1.23e12`` -> ``1.23 T`` + unit; None, NaN or infinity -> ``n/a``."""
    if not _finite(value):
        return MISSING
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def _finite(value) -> bool:
    return value is not None and value == value and value not in (float("inf"), float("-inf"))


def pct(value: float | None) -> str:
    """``0.123`` -> ``12.3%``; None, NaN or infinity -> ``n/a`` (never "nan%")."""
    if not _finite(value):
        return MISSING
    if value and abs(value) < 0.001:  # keep small figures visible: 0.00093%, not 0.0%
        return f"{100 * value:.2g}%"
    return f"{100 * value:.1f}%"


def estimated(text: str, is_estimated: bool | None) -> str:
    """Append the estimated label to a value that came from an estimate."""
    return f"{text} (estimated)" if is_estimated and text != MISSING else text


def first_line(text: str, limit: int = 300) -> str:
    """The first line of a long message (a traceback, a compiler log), shortened."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def interval_text(low: float | None, high: float | None, fmt=si) -> str:
    """`` [low, high]`` of the 95% interval of a non-negative figure (a rate, an energy, MFU),
    or empty text without one. The t-interval of a very noisy run can reach below zero; the
    figure cannot, so the low end is shown as 0."""
    return "" if low is None or high is None else f" [{fmt(max(0.0, low))}, {fmt(high)}]"


def band_text(value_text: str, low: float | None, high: float | None, unit: str = "") -> str:
    """An estimated figure with the band it may lie in: ``9.79 G (estimated, band 7 G-14 G)``."""
    if value_text == MISSING:
        return value_text
    if low is None or high is None:
        return estimated(value_text, True)
    return f"{value_text} (estimated, band {si(low, unit)} to {si(high, unit)})"


def ratio_text(value: float | None, low: float | None, high: float | None,
               significant: bool | None) -> str:
    """A ratio of two runs (speedup, eta gain): ``1.84x [1.62, 2.09]`` when its 95% interval
    excludes 1.0, ``no significant difference [0.92, 1.31]`` when it contains 1.0, and
    ``1.84x (no interval)`` with fewer than two windows on a side."""
    if value is None:
        return MISSING
    if low is None or high is None:
        return f"{value:.2f}x (no interval)"
    span = f"[{low:.2f}, {high:.2f}]"
    return f"{value:.2f}x {span}" if significant else f"no significant difference {span}"


class Footnotes:
    """Footnotes of a table, each text printed once: a reason shared by several rows (a long
    "MFU n/a" reason on every run, say) becomes one note naming all of them."""

    def __init__(self) -> None:
        self._subjects: dict[str, list[str]] = {}

    def add(self, subject: str, text: str) -> None:
        """Note ``text`` about ``subject`` (a run id, a variant)."""
        subjects = self._subjects.setdefault(text, [])
        if subject not in subjects:
            subjects.append(subject)

    def lines(self) -> list[str]:
        """One line per distinct text, in the order first noted: ``a, b: text``."""
        return [f"{', '.join(subjects)}: {text}" for text, subjects in self._subjects.items()]


def json_safe(value):
    """``value`` with every NaN or infinite float replaced by None, through dicts, lists and
    tuples: JSON has no NaN, and strict parsers reject the ``NaN`` Python would write."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
