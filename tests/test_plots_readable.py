"""Every plot kind is readable at its default size (issue 25, item 1): no text reaches outside
the figure or the panel that clips it, no two texts overlap (titles, axis labels, tick labels,
annotations), axes carry units and SI-prefixed ticks instead of an offset such as "1e10", and
long variant names are broken over lines rather than cut.

``ETAMETER_PLOT_DIR=folder`` also saves each figure there as PNG, to look at."""

import os

import pytest

from harness.cli import cli  # noqa: F401  (imports the click commands: the same modules as the CLI)
from hardware_profiles.profiles import builtin_profiles
from profiler.store import Store
from reports import plots
from reports.compare import group_documents
from reports.plot_style import _break_name, text_problems, wrap
from reports.scaling.forecast import choose_law
from reports.scaling.frontier import frontier_with_runs
from reports.scaling.ledger import ledger_from_store
from reports.scaling.plot import forecast_figure, frontier_figure, ledger_figure
from tests import test_ledger
from tests.test_reports import add_run

LONG = ("fp32", "bf16", "fp32+int8-dynamic", "bf16+int4-weight+compile", "bf16+2:4-sparse",
        "fp16+sdpa-flash+compile")


def _variants_store(db_path):
    store = Store(db_path)
    for i, v in enumerate(LONG):
        add_run(store, v, 4, 1000.0 * (1 + i) ** 1.7, sweep="A", samples=(i == 0),
                quality_ok=(v != "fp32+int8-dynamic"),
                factors=(1.0, 1.9) if v == "bf16" else (1.0, 1.01, 1.02))  # bf16: 2 noisy windows
    add_run(store, "fp32+fp8", 4, 0, status="skipped", sweep="A")
    for b, tps in ((8, 2.1e5), (16, 3.9e5), (32, 6.2e5)):  # a batch series for throughput
        add_run(store, "fp32", b, tps, sweep=f"b{b}")
        add_run(store, "bf16+int4-weight+compile", b, 1.4 * tps, sweep=f"b{b}")
    add_run(store, "fp32", 4, 80.0, sweep="B", preset="tiny-llama", scenario="train", meter="rapl")
    add_run(store, "bf16", 4, 120.0, sweep="B", preset="tiny-llama", scenario="train", meter="rapl")
    return store


def _ledger_doc():
    store = Store(memory=True)
    ref = test_ledger.add_run(store, "fp32", peak=1e12, mfus=[0.2, 0.21], powers=[50, 51])
    for v, m in (("bf16", 0.4), ("fp32+int8-dynamic", 0.3), ("bf16+int4-weight+compile", 0.5)):
        test_ledger.add_run(store, v, peak=1e12, mfus=[m, m * 1.02], powers=[50, 53],
                            estimated=True)
    return ledger_from_store(store, sweep=ref["id"][:8])


def figures(db_path):
    """(name, figure) for every plot kind the CLI can write."""
    store = _variants_store(db_path)
    runs = store.runs()
    power_run = next(r for r in runs if store.power_samples(r["id"]))
    law, _ = choose_law("chinchilla")
    yield "variants", plots.variants_figure(group_documents(runs))
    yield "power", plots.run_power_figure(store, power_run["id"][:8])
    yield "throughput", plots.throughput_figure(runs, "batch_size")
    yield "forecast", forecast_figure(law, 3.2e9, estimated=True)
    yield "ledger", ledger_figure(_ledger_doc()["ledgers"])
    yield "frontier", frontier_figure(frontier_with_runs(builtin_profiles(), runs, "bf16"))


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every plot kind, drawn once: name -> (figure, its text problems)."""
    db_path = str(tmp_path_factory.mktemp("plots") / "etameter.db")
    out = {name: (fig, text_problems(fig)) for name, fig in figures(db_path)}
    yield out
    folder = os.environ.get("ETAMETER_PLOT_DIR")
    for name, (fig, _) in out.items():
        if folder:
            plots.save(fig, os.path.join(folder, f"{name}.png"), force=True)
        else:
            plots._pyplot().close(fig)


def test_every_plot_kind_is_readable(drawn):
    assert list(drawn) == ["variants", "power", "throughput", "forecast", "ledger", "frontier"]
    for name, (fig, problems) in drawn.items():
        assert not problems, f"{name}: " + "; ".join(problems[:5])
        labels = [t.get_text() for ax in fig.get_axes() for t in ax.get_yticklabels()]
        assert not any("e+" in label or label.startswith("1e") for label in labels), (name, labels)


def test_axes_carry_units_and_si_ticks(drawn):
    named = {name: fig for name, (fig, _) in drawn.items()}
    fig = named["variants"]
    eta_ax = fig.get_axes()[0]
    assert "FLOP/J" in eta_ax.get_ylabel() and "(estimated)" in eta_ax.get_ylabel()
    ticks = [t.get_text() for t in eta_ax.get_yticklabels() if t.get_text()]
    assert any(t.endswith((" k", " M", " G")) for t in ticks), ticks
    assert not eta_ax.yaxis.get_offset_text().get_text()  # no "1e8" above the axis
    assert "tokens/s" in named["throughput"].get_axes()[0].get_ylabel()
    assert "W" in named["power"].get_axes()[0].get_ylabel()
    assert "FLOP/J" in named["frontier"].get_axes()[0].get_ylabel()


def test_long_names_break_at_plus_and_titles_wrap():
    assert _break_name("fp32+int8-dynamic", 10) == "fp32+\nint8-dynamic"
    assert _break_name("bf16+int4-weight+compile", 12) == "bf16+\nint4-weight+\ncompile"
    assert _break_name("fp32", 10) == "fp32"
    title = wrap("MFU, % of dense vendor peak " * 6, width_in=4.0, fontsize=10)
    assert len(title.split("\n")) > 1 and "pea\n" not in title


def test_saved_plot_is_the_whole_figure(drawn, tmp_path):
    """What is saved is what was checked: the figure at its own size, nothing cropped."""
    from matplotlib.image import imread

    fig = drawn["power"][0]
    width, height = fig.get_size_inches()
    fig.savefig(tmp_path / "p.png", dpi=plots.DPI)  # as plots.save does, keeping the figure open
    rows, cols = imread(tmp_path / "p.png").shape[:2]
    assert (cols, rows) == (round(width * plots.DPI), round(height * plots.DPI))
