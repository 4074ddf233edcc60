"""Tables that fit the terminal: which columns to show, and how wide each is.

A table is given as columns (``FitColumn``: a short header and a priority) and rows of cells,
each cell a ``(main, detail)`` pair: the figure, and an optional second line such as its 95%
interval. ``fit`` chooses a layout for a width in characters:

1. every column at its natural width (no line wrapped), when that fits;
2. else every column at least as wide as its longest word (headers and cells wrap at spaces,
   never inside a word) and as wide as its whole second line, the rest of the width shared
   out in proportion to what each column would need to stay unwrapped;
3. else the second lines are left out, least important column first, then whole columns are
   (``priority``: 0 is never left out; larger numbers go first).

Nothing here prints: reports.terminal renders the layout with rich, whose table takes
``CHROME`` characters per column plus one for its borders and padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Characters a rich table (heavy-head box, padding 1) adds per column, and once.
CHROME_PER_COLUMN, CHROME = 3, 1


@dataclass(frozen=True)
class FitColumn:
    """A column of a fitted table: its header (short: it wraps at spaces only) and how
    readily it is left out when the table is too wide (0: never)."""

    header: str
    priority: int = 0
    #: What a cell's second line is, for the footnote when it is left out.
    detail: str = "95% interval"


@dataclass
class Layout:
    """The columns shown (indices), which of them show their second line, their widths (in
    the order of ``shown``), and what was left out to fit."""

    shown: list[int]
    details: set[int]
    widths: list[int]
    dropped: list[int] = field(default_factory=list)
    details_dropped: list[int] = field(default_factory=list)

    @property
    def total_width(self) -> int:
        return table_width(self.widths)


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes (wide characters count twice)."""
    from rich.cells import cell_len as rich_cell_len

    return rich_cell_len(text)


def table_width(widths: list[int]) -> int:
    """The width of a rich table whose columns have these content widths."""
    return sum(widths) + CHROME_PER_COLUMN * len(widths) + CHROME


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _range(col: FitColumn, cells: list[tuple[str, str]], detail: bool) -> tuple[int, int]:
    """(narrowest, natural) content width of a column: its longest word or whole second
    line, and its longest unwrapped line."""
    narrow = max([_longest_word(col.header)] + [_longest_word(m) for m, _ in cells]
                 + ([cell_len(d) for _, d in cells] if detail else []))
    natural = max([cell_len(col.header)] + [_longest_line(m) for m, _ in cells]
                  + ([cell_len(d) for _, d in cells] if detail else []))
    return max(1, narrow), max(1, natural)


def _widths(ranges: list[tuple[int, int]], width: int) -> list[int] | None:
    """Content widths that fit ``width``, or None: natural widths when they fit, else the
    narrowest widths plus a share of what is left, in proportion to what each lacks."""
    natural = [n for _, n in ranges]
    if table_width(natural) <= width:
        return natural
    narrow = [m for m, _ in ranges]
    spare = width - table_width(narrow)
    if spare < 0:
        return None
    want = [n - m for m, n in ranges]
    total = sum(want) or 1
    widths = [m + spare * w // total for (m, _), w in zip(ranges, want)]
    left = width - table_width(widths)
    for i in sorted(range(len(widths)), key=lambda i: want[i] - (widths[i] - narrow[i]),
                    reverse=True):
        if left <= 0:
            break
        if widths[i] < natural[i]:
            widths[i] += 1
            left -= 1
    return widths


def fit(columns: list[FitColumn], rows: list[list[tuple[str, str]]], width: int) -> Layout:
    """The layout of ``rows`` under ``columns`` for a terminal ``width`` characters wide (see
    the module docstring). When even the columns of priority 0 cannot fit, they are shown at
    their narrowest and the terminal wraps the lines."""
    shown = list(range(len(columns)))
    details = {i for i in shown if any(row[i][1] for row in rows)}
    by_priority = sorted(shown, key=lambda i: (columns[i].priority, i), reverse=True)
    cuts = [("detail", i) for i in by_priority if i in details] + \
        [("column", i) for i in by_priority if columns[i].priority > 0]
    layout = Layout(shown, details, [])
    for step in [None] + cuts:
        if step is not None:
            kind, i = step
            if kind == "detail":
                layout.details.discard(i)
                layout.details_dropped.append(i)
            else:
                layout.shown.remove(i)
                layout.dropped.append(i)
        ranges = [_range(columns[i], [row[i] for row in rows], i in layout.details)
                  for i in layout.shown]
        widths = _widths(ranges, width)
        if widths is not None:
            layout.widths = widths
            return layout
    layout.widths = [m for m, _ in ranges]
    return layout


def natural_layout(columns: list[FitColumn], rows: list[list[tuple[str, str]]]) -> Layout:
    """Every column with its second line, each at its natural width (for ``--wide``)."""
    shown = list(range(len(columns)))
    details = {i for i in shown if any(row[i][1] for row in rows)}
    widths = [_range(columns[i], [row[i] for row in rows], i in details)[1] for i in shown]
    return Layout(shown, details, widths)


def cell_text(cell: tuple[str, str], with_detail: bool) -> str:
    """A cell's text in a layout: its main text, and its second line when shown."""
    main, detail = cell
    return f"{main}\n{detail}" if with_detail and detail else main


def left_out_note(columns: list[FitColumn], layout: Layout, width: int, wide_hint: str) -> list[str]:
    """The footnote saying what was left out to fit ``width`` columns, and where it is."""
    parts = []
    if layout.dropped:
        parts.append("columns " + ", ".join(columns[i].header for i in sorted(layout.dropped)))
    kinds: dict[str, list[str]] = {}
    for i in sorted(layout.details_dropped):
        if i in layout.shown:
            kinds.setdefault(columns[i].detail, []).append(columns[i].header)
    parts += [f"the {kind} of {', '.join(headers)}" for kind, headers in kinds.items()]
    if not parts:
        return []
    return [f"left out to fit {width} columns: {'; '.join(parts)} ({wide_hint} shows them)"]
