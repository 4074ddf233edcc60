"""Release dates of device profiles: an optional ISO date with its source, and the date as a
decimal year (the time axis of the hardware efficiency frontier, reports/scaling/frontier.py).

``release_date`` is the day the vendor launched the product with its specifications (the
announcement with a datasheet), not the first general availability: it is the one date every
vendor publishes for every part.
"""

from __future__ import annotations

from datetime import date

from profiler.errors import ProfileError


def parse_release_date(entry: dict, sources: dict, where: str) -> str | None:
    """The validated ``release_date`` of a profile entry ("YYYY-MM-DD"), or None when absent.

    A date needs ``sources.release_date``, like every other figure of a profile."""
    raw = entry.get("release_date")
    if raw is None:
        return None
    text = raw.isoformat() if isinstance(raw, date) else raw  # TOML may give a date value
    try:
        parsed = date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ProfileError(f"{where}: field 'release_date' must be an ISO date like "
                           f"\"2022-03-22\", got {raw!r}")
    if not sources.get("release_date"):
        raise ProfileError(f"{where}: sources.release_date is missing: every figure needs a source")
    return parsed.isoformat()


def decimal_year(iso_date: str) -> float:
    """"2022-07-02" -> 2022.5: the year plus the fraction of it elapsed at the day's start."""
    d = date.fromisoformat(iso_date)
    start, end = date(d.year, 1, 1), date(d.year + 1, 1, 1)
    return d.year + (d - start).days / (end - start).days
