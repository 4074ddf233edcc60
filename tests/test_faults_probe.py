"""Inputs a fault-injection probe found to crash or mislead (2026-11-23): each now ends in a
one-line error naming the problem, never a traceback or an impossible number."""

import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.store import Store
from profiler.store.transfer import export_runs
from tests.test_faults_store import add_run


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output and not (
        result.exception and not isinstance(result.exception, SystemExit)), result.output
    return result


def model_file(tmp_path, **keys):
    data = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
            "vocab_size": 256, "max_position_embeddings": 128, **keys}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("args, message", [
    (("flops", "--preset", "tiny", "--batch", "1e308"), "whole number"),
    (("bench", "--preset", "tiny", "--seed", "99999999999999999999999"), "seed must be"),
    (("bench", "--preset", "tiny", "--variants", "moe-99999999999999999999-1"), "not plausible"),
    (("mfu", "--params", "1e9", "--layers", "24", "--heads", "16", "--head-dim", "64", "--seq",
      "2048", "--tokens-per-s", "1e12", "--peak-tflops", "989"), "above 100% is impossible"),
    (("mfu", "--params", "1e308", "--layers", "24", "--heads", "16", "--head-dim", "64", "--seq",
      "2048", "--tokens-per-s", "1e5", "--peak-tflops", "989"), "overflow"),
    (("forecast", "--compute", "1e-300", "--eta", "1e10"), "at least one FLOP"),
])
def test_probe_inputs_are_one_line_errors(args, message, db_path):
    result = run(*args, *(("--db", db_path) if args[0] == "bench" else ()))
    assert result.exit_code != 0 and message in result.output, result.output


def test_calendar_edges_are_handled(db_path):
    add_run(Store(db_path))
    assert run("report", "--until", "9999-12-31", "--db", db_path).exit_code == 0
    result = run("report", "--since", "99999999999w", "--db", db_path)
    assert result.exit_code == 1 and "outside the calendar" in result.output


@pytest.mark.parametrize("keys, message", [
    ({"hidden_size": 10 ** 12}, "not plausible"),
    ({"num_hidden_layers": 10 ** 23}, "not plausible"),
    ({"rope_theta": "abc"}, "'rope_theta' must be a positive number"),
])
def test_absurd_model_files_are_refused_before_building(tmp_path, keys, message):
    result = run("flops", "--model", model_file(tmp_path, **keys))
    assert result.exit_code == 1 and message in result.output, result.output


def test_a_deeply_nested_model_file_is_named(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    result = run("flops", "--model", path)
    assert result.exit_code == 1 and "nested too deeply" in result.output


@pytest.mark.parametrize("poison, message", [
    (lambda d: d["results"][0].update(tokens_per_s=-5.0), "is negative"),
    (lambda d: d["runs"][0].update(started_at="yesterday"), "not an ISO date"),
])
def test_imports_with_impossible_values_are_refused(tmp_path, db_path, poison, message):
    source = Store(str(tmp_path / "src.db"))
    add_run(source)
    path = tmp_path / "e.json"
    export_runs(source, source.runs(), path)
    data = json.loads(path.read_text())
    poison(data)
    path.write_text(json.dumps(data))
    result = run("import", path, "--db", db_path)
    assert result.exit_code == 1 and message in result.output, result.output
    assert Store(db_path).runs() == []


def test_a_fractional_window_in_csv_is_refused(tmp_path, db_path):
    source = Store(str(tmp_path / "src.db"))
    add_run(source)
    path = tmp_path / "e.csv"
    export_runs(source, source.runs(), path)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    col = header.index("result__window")
    row = text[1].split(",")
    row[col] = "1.5"
    path.write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    result = run("import", path, "--db", db_path)
    assert result.exit_code == 1 and "whole number" in result.output, result.output


def test_selftest_refuses_an_output_it_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("selftest", "--cpu", "--out", blocker / "sub")
    assert result.exit_code == 1 and "cannot create --out" in result.output, result.output
