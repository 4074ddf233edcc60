"""What every etameter plot shares, so each is readable at its default size.

- ``figure`` makes a figure of full-width panels with matplotlib's constrained layout (titles,
  rotated tick labels and legends get their room; nothing is cut at the edge);
- ``set_title`` and ``wrap`` wrap titles to the width they have (no "MFU, % of dense vendor
  pea"); ``plain`` keeps a '$' in a name from starting math text;
- ``si_axis`` labels an axis with its unit and its ticks with SI prefixes as the tables write
  numbers ("2 G", "0.5", not a bare "1e10" offset above the axis);
- ``category_ticks`` breaks long category names (variants such as "fp32+int8-dynamic") over
  lines at '+', and tilts them only when a part still does not fit its slot;
- ``text_problems`` lists the texts of a drawn figure that stick out of it or overlap each
  other: what the tests check for every plot kind.

Plots elsewhere (reports.plots, reports.scaling.plot, and new ones) use these helpers rather
than their own sizes and formatters.
"""

from __future__ import annotations

import textwrap

#: Default figure width, inches: at ``DPI`` it fills a 1280-pixel browser window's page.
WIDTH_IN = 10.0
#: Resolution of saved and embedded PNGs, dots per inch.
DPI = 110
#: Font sizes, points.
TITLE_PT = 10
LABEL_PT = 9
TICK_PT = 8.5
#: Average width of a character as a fraction of the font size (DejaVu Sans, measured).
_CHAR_EM = 0.6


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (never a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain(text) -> str:
    """``text`` drawn as written: a '$' in a variant, device or run name must not start
    matplotlib math text (it would garble the label or fail the plot). Axis tick labels keep
    their math (log-axis exponents), so this is applied to etameter's own texts only."""
    return str(text).replace("$", r"\$")


def chars_fitting(width_in: float, fontsize: float) -> int:
    """How many average characters of ``fontsize`` points fit in ``width_in`` inches."""
    return max(8, int(width_in * 72 / (_CHAR_EM * fontsize)))


def wrap(text: str, width_in: float = WIDTH_IN, fontsize: float = TITLE_PT) -> str:
    """``text`` wrapped at spaces to lines that fit ``width_in`` inches at ``fontsize``; its
    own line breaks are kept."""
    width = chars_fitting(width_in, fontsize)
    return "\n".join(line for part in str(text).split("\n")
                     for line in (textwrap.wrap(part, width) or [""]))


def figure(nrows: int = 1, ncols: int = 1, *, panel_height_in: float = 3.4,
           width_in: float = WIDTH_IN):
    """A figure of ``nrows`` x ``ncols`` panels spanning ``width_in`` (the panels share the
    width, nothing else: no empty gutter) with constrained layout; returns (fig, axes) with
    axes a 2-D array."""
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width_in, panel_height_in * nrows + 0.6),
                             squeeze=False, layout="constrained")
    return fig, axes


def panel_width_in(ax) -> float:
    """The width a panel has in its figure, inches (its share of the grid, less margins)."""
    spec = ax.get_subplotspec()
    fig_width = _width_in(ax.figure)
    if spec is None:
        return fig_width
    cols = spec.get_gridspec().ncols
    span = spec.colspan.stop - spec.colspan.start
    return max(1.5, fig_width * span / cols - 0.9)  # 0.9 in: the y tick labels and axis label


def _width_in(fig) -> float:
    """The width of a figure or subfigure, inches."""
    root = fig.figure  # a Figure is its own .figure; a SubFigure's is the figure it is in
    share = fig.bbox_relative.width if fig is not root else 1.0
    return root.get_figwidth() * share


def set_title(ax, text: str, fontsize: float = TITLE_PT) -> None:
    """The panel's title, wrapped to the panel's width."""
    ax.set_title(wrap(plain(text), panel_width_in(ax), fontsize), fontsize=fontsize)


def si_axis(ax, label: str, unit: str = "", axis: str = "y") -> None:
    """Label ``axis`` of ``ax`` "label, unit" and write its ticks as the tables write numbers
    (reports.numbers.si: ``0.25``, ``800``, ``12 k``, ``1.5 T``), with no offset or multiplier
    text; on a log axis the labelled minor ticks too. Call it after setting the scale."""
    from matplotlib.ticker import FuncFormatter

    from reports.numbers import si

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: si(v)))
    if target.get_scale() == "log":
        target.set_minor_formatter(_si_log_formatter())
    text = f"{label}, {unit}" if unit else label
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)(plain(text), fontsize=LABEL_PT)
    ax.tick_params(axis=axis, labelsize=TICK_PT)


def _si_log_formatter():
    """matplotlib's choice of which minor log ticks to label, written as reports.numbers.si."""
    from matplotlib.ticker import LogFormatter

    from reports.numbers import si

    class SiLogFormatter(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return si(x)

    return SiLogFormatter(labelOnlyBase=False)


def integer_axis(ax, label: str, axis: str = "x") -> None:
    """Ticks written as plain integers (batch sizes, sequence lengths on a log2 axis)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(plain(label), fontsize=LABEL_PT)
    ax.tick_params(axis=axis, labelsize=TICK_PT)


def _break_name(name: str, width: int) -> str:
    """A category name over lines of at most ``width`` characters where it can: broken after
    '+' (the joiner of variant parts), then at spaces."""
    lines, current = [], ""
    for part in name.replace("+", "+\x00").split("\x00"):
        if current and len(current) + len(part) > width:
            lines.append(current)
            current = part
        else:
            current += part
    lines.append(current)
    return "\n".join(wrapped for line in lines
                     for wrapped in (textwrap.wrap(line, width) if " " in line else [line]))


def category_ticks(ax, labels: list[str], fontsize: float = TICK_PT) -> None:
    """Put ``labels`` (already plain text) under the bars 0..n-1 of ``ax``: each broken over
    lines to fit its slot; tilted 30 degrees only when a part is still wider than its slot."""
    slot = chars_fitting(panel_width_in(ax) / max(1, len(labels)), fontsize)
    texts = ["\n".join(_break_name(line, slot) for line in str(label).split("\n"))
             for label in labels]
    too_wide = any(len(line) > slot for t in texts for line in t.split("\n"))
    ax.set_xticks(range(len(texts)), texts, fontsize=fontsize,
                  rotation=30 if too_wide else 0, ha="right" if too_wide else "center",
                  rotation_mode="anchor" if too_wide else "default")


def drawn_texts(fig) -> list:
    """The texts a drawn ``fig`` shows: titles, labels, legends, annotations, and the tick
    labels of the ticks inside each axis' view (an axis keeps stale labels beyond it)."""
    from matplotlib.axes import Axes
    from matplotlib.text import Text

    ticks, drawn = set(), []
    for ax in fig.findobj(Axes):
        for axis in (ax.xaxis, ax.yaxis):
            every = axis.get_major_ticks() + axis.get_minor_ticks()
            ticks.update(id(label) for t in every for label in (t.label1, t.label2))
            for t in axis._update_ticks():  # the ticks matplotlib draws
                drawn += [label for label in (t.label1, t.label2) if label.get_visible()]
    drawn += [t for t in fig.findobj(Text) if id(t) not in ticks and t.get_visible()]
    return [t for t in drawn if t.get_text().strip()]


def text_problems(fig, tolerance_px: float = 1.0) -> list[str]:
    """The texts of ``fig`` (drawn first) that reach outside the figure, and pairs of texts
    that overlap one another; empty when every text can be read."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = drawn_texts(fig)
    problems, extents = [], []
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    if not _within(tight, box, tolerance_px):
        problems.append(f"the figure's tight bbox {tuple(round(v) for v in tight.extents)} "
                        f"reaches outside it {tuple(round(v) for v in box.extents)}")
    for t in texts:
        e = t.get_window_extent(renderer)
        extents.append(e)
        if not _within(e, box, tolerance_px):
            problems.append(f"clipped: {t.get_text()!r} at {tuple(round(v) for v in e.extents)} "
                            f"outside the figure {tuple(round(v) for v in box.extents)}")
        clip = t.get_clip_box() if t.get_clip_on() else None
        if clip is not None and not _within(e, clip, tolerance_px):
            problems.append(f"clipped: {t.get_text()!r} reaches outside the panel that clips it")
    for i, (a, ea) in enumerate(zip(texts, extents)):
        for b, eb in zip(texts[i + 1:], extents[i + 1:]):
            if _shrunk(ea, tolerance_px).overlaps(_shrunk(eb, tolerance_px)):
                problems.append(f"overlap: {a.get_text()!r} and {b.get_text()!r}")
    return problems


def _within(inner, outer, px: float) -> bool:
    return (inner.x0 >= outer.x0 - px and inner.y0 >= outer.y0 - px
            and inner.x1 <= outer.x1 + px and inner.y1 <= outer.y1 + px)


def _shrunk(bbox, px: float):
    from matplotlib.transforms import Bbox

    return Bbox.from_extents(bbox.x0 + px, bbox.y0 + px, bbox.x1 - px, bbox.y1 - px)
