"""Tables fit the terminal (issue 25, item 2): in a 100-column console the comparison and run
tables are at most 100 columns wide, no header or figure is broken inside a word, what was
left out is named, and --wide shows every column."""

import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from harness.cli import cli
from profiler.store import Store
from reports.compare import compare_groups
from reports.compare_table import COLUMNS, NARROW, terminal_cells
from reports.table_fit import FitColumn, fit, table_width
from reports.terminal import print_compare, runs_table_text
from tests.test_reports import add_run

VARIANTS = ("fp32", "bf16", "fp32+int8-dynamic", "bf16+int4-weight+compile")


@pytest.fixture
def store(db_path):
    store = Store(db_path)
    for i, v in enumerate(VARIANTS):
        add_run(store, v, 4, 1000.0 * (1.3 ** i), sweep="A", samples=(i == 0),
                factors=(1.0, 1.01 + 0.3 * (i == 1), 1.02))
    add_run(store, "fp32+fp8", 4, 0, status="skipped", sweep="A")
    for run in store.runs("ok"):  # an estimate's band, as the CPU estimate stores it
        s = run["summary"]
        store.set_run_summary(run["id"], {**s, "eta_low_flops_per_j": 0.5 * s["eta_flops_per_j"],
                                          "eta_high_flops_per_j": 3.5 * s["eta_flops_per_j"]},
                              run["quality_ok"])
    return store


def _header_lines(text: str) -> list[str]:
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    return lines[top + 1:bottom]


def _headers_whole(text: str, headers) -> None:
    """Each header word appears whole in one header line: none was broken mid-word."""
    cells = [c.strip() for line in _header_lines(text) for c in line.strip("┃").split("┃")]
    words = {w for c in cells for w in c.split()}
    for header in headers:
        for word in header.split():
            assert word in words, (word, _header_lines(text))


def _compare_text(store, width, wide=False) -> str:
    console = Console(width=width, record=True)
    print_compare(compare_groups(store.runs(), "fp32"), console=console, wide=wide)
    return console.export_text()


def test_comparison_fits_100_columns(store):
    text = _compare_text(store, 100)
    assert max(len(line) for line in text.splitlines()) <= 100, text
    _headers_whole(text, [c.header for c, _ in NARROW if c.header in text])
    for v in VARIANTS:  # variant names whole, not "fp32+int8-d / ynamic"
        assert re.search(rf"│ {re.escape(v)} +│", text), (v, text)
    for must in ("variant", "speedup", "eta FLOP/J", "quality", "(reference)", "(skipped)"):
        assert must in text, must
    # an estimated figure keeps its label and band, however narrow (wrapped at spaces)
    assert re.search(r"\(estimated, +│[^\n]*\n[^\n]*│ band \d", text), text
    assert "left out to fit 100 columns" in text and "--wide" in text


def test_run_table_fits_100_columns(store):
    text = runs_table_text(store.runs(), "x.db", console=Console(width=100, record=True))
    assert max(len(line) for line in text.splitlines()) <= 100, text
    _headers_whole(text, ["run", "status", "variant", "eta FLOP/J", "quality"])
    for v in VARIANTS:
        assert v in text
    assert "etameter report --wide" in text


def test_intervals_on_a_second_line_when_there_is_room(store):
    roomy = _compare_text(store, 200)
    assert "left out" not in roomy
    assert re.search(r"│ +\[\d[\d.]* k?, \d[\d.]* k?\] +│", roomy), roomy  # tokens/s interval
    narrow = _compare_text(store, 80)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "the 95% interval of" in narrow


def test_wide_shows_every_column_unbroken(store):
    text = _compare_text(store, 100, wide=True)
    _headers_whole(text, COLUMNS)
    assert "left out" not in text and "MFU own peak" in text and "spread" in text


def test_cli_wide_and_default(store, db_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["compare", "--baseline", "fp32", "--db", db_path, "--wide"])
    assert out.exit_code == 0, out.output
    assert "MFU own peak" in out.output
    out = runner.invoke(cli, ["report", "--db", db_path, "--wide"])
    assert out.exit_code == 0 and "energy method" in out.output and "tokens/J" in out.output


def test_fit_rules():
    cols = [FitColumn("a"), FitColumn("long header", 2), FitColumn("c", 1)]
    rows = [[("x", ""), ("word " * 8, "[1.0, 2.0]"), ("yy", "[3, 4]")]]
    roomy = fit(cols, rows, 200)
    assert roomy.shown == [0, 1, 2] and roomy.details == {1, 2} and not roomy.dropped
    tight = fit(cols, rows, 30)
    assert table_width(tight.widths) <= 30 and tight.widths[tight.shown.index(1)] >= len("header")
    tiny = fit(cols, rows, 12)
    assert tiny.shown == [0] or table_width(tiny.widths) <= 12
    assert 1 in tiny.dropped and 0 in tiny.shown  # priority 0 stays; 2 goes before 1


def test_terminal_cells_match_wide_columns(store):
    rows = compare_groups(store.runs(), "fp32")[0]["rows"]
    columns, cells = terminal_cells(rows, wide=True)
    assert [c.header for c in columns] == list(COLUMNS)
    assert cells[0][0] == ("fp32", "")
