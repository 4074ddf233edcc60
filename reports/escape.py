"""Untrusted text made inert, once for every output format.

Stored text (an error message, a device or preset name, an imported run's fields) may carry
terminal control sequences (ESC/CSI/OSC, other C0 and C1 controls) that would move the
cursor, retitle the window or hide text, and bidi overrides (U+202A-202E, U+2066-2069) that
reorder what a reader sees. :func:`plain` shows each such character as a visible escape
(``\\x1b``, ``\\u202e``), so the text is printed as written, never obeyed; every format (the
terminal tables, markdown, CSV) calls it before its own escaping.
"""

from __future__ import annotations

import re

#: C0 controls except tab/newline/carriage return, DEL, C1 controls, the bidi embeddings,
#: overrides and isolates, the directional marks, and the line/paragraph separators.
_INERT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                    "\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile("[\t\r\n]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text, *, one_line: bool = True) -> str:
    """``text`` (made a string) with every control and bidi character shown as a visible
    escape; with ``one_line``, tabs and line breaks become spaces (a table cell, a note)."""
    text = _INERT.sub(_visible, str(text))
    return _BREAKS.sub(" ", text) if one_line else text


def is_plain(text: str) -> bool:
    """Whether ``text`` holds no control or bidi character."""
    return _INERT.search(text) is None
