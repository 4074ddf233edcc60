"""Escaping (issue 22, item 8): terminal control sequences (ESC, CSI, OSC, other C0 and C1
controls) and bidi overrides in stored text never reach the table, markdown or CSV report as
live characters, and markdown never keeps a live link (``javascript:``)."""

import csv
import io
import re

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.store import Store
from reports.escape import is_plain, plain

ESC_CLEAR = "\x1b[2J\x1b[H"           # CSI: clear the screen
OSC_TITLE = "\x1b]0;pwned\x07"         # OSC: retitle the window
C1_CSI = "\x9b31m"                      # C1 CSI
BIDI = "\u202eevil\u202c\u2066x\u2069"  # right-to-left override, isolates
OTHER_C0 = "\x00\x08\x7f"
HOSTILE = f"v{ESC_CLEAR}{OSC_TITLE}{C1_CSI}{BIDI}{OTHER_C0}"
LINK = "[click](javascript:alert(1))"

LIVE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_db(db_path):
    store = Store(db_path)
    run_id = store.start_run(scenario="train", preset=f"p{OSC_TITLE}", variant=HOSTILE,
                             device=f"cpu{BIDI}", device_type="cpu", attention_convention="full",
                             config={}, environment={"host": "h"})
    store.add_result(run_id, {"window": 0, "steps": 1, "duration_s": 1.0, "tokens_per_s": 10.0})
    store.finish_run(run_id, "failed", f"boom {ESC_CLEAR} {LINK} {BIDI}")
    link_id = store.start_run(scenario="train", preset="tiny", variant=LINK, device="cpu",
                              device_type="cpu", attention_convention="full", config={},
                              environment={"host": "h"})
    store.finish_run(link_id, "failed", "<javascript:alert(2)>")
    store.close()
    return db_path


def report(db_path, *args):
    result = CliRunner().invoke(cli, ["report", "--db", db_path, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("text", [ESC_CLEAR, OSC_TITLE, C1_CSI, BIDI, OTHER_C0, "\u200f\u2028"])
def test_plain_shows_every_control_as_a_visible_escape(text):
    out = plain(f"a{text}b")
    assert is_plain(out) and not LIVE.search(out)
    assert out.startswith("a") and out.endswith("b")
    assert "\\x" in out or "\\u" in out


def test_plain_keeps_ordinary_text_and_folds_line_breaks():
    assert plain("int8 wo — 12.3 TFLOP/s, µs") == "int8 wo — 12.3 TFLOP/s, µs"
    assert plain("a\nb\tc\rd") == "a b c d"
    assert plain("a\nb", one_line=False) == "a\nb"


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_reports_carry_no_live_control_or_bidi_character(db_path, fmt):
    out = report(hostile_db(db_path), "--format", fmt)
    assert not LIVE.search(out), repr(LIVE.search(out))
    assert "\\x1b" in out and "\\u202e" in out  # shown, not dropped


def test_markdown_keeps_no_live_link(db_path):
    out = report(hostile_db(db_path), "--format", "markdown")
    assert "\\[click\\](javascript\\:" in out and "\\<javascript\\:" in out
    assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", out)  # no unescaped [text](
    assert "javascript\\:" in out


def test_csv_cells_read_back_inert(db_path):
    rows = list(csv.DictReader(io.StringIO(report(hostile_db(db_path), "--format", "csv"))))
    assert rows and all(not LIVE.search(v or "") for row in rows for v in row.values())


def test_text_lines_of_the_cli_are_inert(capsys):
    from harness.cli.options import echo_lines

    echo_lines([f"device {BIDI}{ESC_CLEAR}"])
    assert not LIVE.search(capsys.readouterr().out)


def test_error_messages_and_delete_lines_are_inert(db_path):
    hostile_db(db_path)
    bad = CliRunner().invoke(cli, ["compare", "--baseline", HOSTILE, "--db", db_path])
    assert not LIVE.search(bad.output)
    store = Store(db_path, write=False)
    run_id = next(r["id"] for r in store.runs() if r["variant"] == HOSTILE)
    out = CliRunner().invoke(cli, ["delete", run_id, "--db", db_path])
    assert out.exit_code == 0 and "\\x1b" in out.output and not LIVE.search(out.output)
