"""Issue 25, item 10: output files honour the umask, every --plot says where it wrote, the CSV
report carries intervals and bands, presets estimate memory in the device's precisions, and
the README says what the output says and how long the tests take."""

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.files import write_atomically
from profiler.store import Store
from tests.test_reports import add_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_umask_not_0600(umask_022, tmp_path, db_path):
    store = Store(db_path)
    run_id = add_run(store, "fp32", 4, 1000.0, samples=True, sweep="s")
    add_run(store, "bf16", 4, 1500.0, sweep="s")
    runner = CliRunner()
    outputs = {"page.html": ["report", "--html"], "v.png": ["plot", "variants", "--out"],
               "p.svg": ["plot", "power", "--run", run_id[:8], "--out"], "runs.json": ["export"],
               "runs.csv": ["export"]}
    for name, args in outputs.items():
        result = runner.invoke(cli, args + [str(tmp_path / name), "--db", db_path])
        assert result.exit_code == 0, result.output
        assert _mode(tmp_path / name) == 0o644, (name, oct(_mode(tmp_path / name)))


def test_a_replaced_file_keeps_its_permissions(umask_022, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomically(target, lambda tmp: Path(tmp).write_text("new"), force=True)
    assert target.read_text() == "new" and _mode(target) == 0o640
    os.umask(0o077)
    write_atomically(tmp_path / "private.txt", lambda tmp: Path(tmp).write_text("x"))
    assert _mode(tmp_path / "private.txt") == 0o600


def test_every_plot_option_says_where_it_wrote(tmp_path):
    runner = CliRunner()
    out = tmp_path / "f.png"
    result = runner.invoke(cli, ["forecast", "--compute", "1e24", "--eta", "1e12", "--plot",
                                 str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr and json.loads(result.stdout)["plot"] == str(out)
    out = tmp_path / "frontier.svg"
    result = runner.invoke(cli, ["frontier", "--db", str(tmp_path / "none.db"), "--plot", str(out)])
    assert result.exit_code == 0 and f"wrote {out}" in result.stderr


def test_csv_report_has_interval_and_band_columns(db_path):
    store = Store(db_path)
    run_id = add_run(store, "fp32", 4, 1000.0)
    run = store.get_run(run_id)
    store.set_run_summary(run_id, {**run["summary"], "eta_low_flops_per_j": 5e7,
                                   "eta_high_flops_per_j": 4e8}, True)
    text = CliRunner().invoke(cli, ["report", "--db", db_path, "--format", "csv"]).stdout
    (row,) = list(csv.DictReader(io.StringIO(text)))
    for key in ("tokens_per_s", "mfu", "eta_flops_per_j", "energy_j"):
        low, high = float(row[f"{key}_ci_low"]), float(row[f"{key}_ci_high"])
        assert low <= float(row[key]) * (1 + 1e-9) and float(row[key]) <= high * (1 + 1e-9), key
    assert float(row["eta_low_flops_per_j"]) == 5e7 and float(row["eta_high_flops_per_j"]) == 4e8
    assert "energy_low_j" in row and "energy_high_j" in row


def test_presets_estimate_memory_in_the_devices_precisions():
    runner = CliRunner()
    cpu = json.loads(runner.invoke(cli, ["presets", "--device", "cpu", "--json"]).stdout)
    gpu = json.loads(runner.invoke(cli, ["presets", "--device", "cuda", "--json"]).stdout)
    tiny_cpu, tiny_gpu = cpu["presets"][0]["memory"], gpu["presets"][0]["memory"]
    assert tiny_cpu["train"]["precision"] == "fp32" and tiny_cpu["decode"]["precision"] == "fp32"
    assert tiny_gpu["train"]["precision"] == "bf16-autocast" and tiny_gpu["decode"]["precision"] == "bf16"
    assert tiny_cpu["decode"]["bytes"] > tiny_gpu["decode"]["bytes"]  # 4-byte weights, not 2
    text = runner.invoke(cli, ["presets", "--device", "cpu"]).stdout
    assert "fp32 training, fp32 decode of 16 tokens, as on the CPU" in text.splitlines()[0]


def test_readme_says_geometric_mean_and_how_long_the_tests_take():
    readme = (ROOT / "README.md").read_text()
    assert "[95% interval of the mean]" not in readme  # what bench and compare never print
    assert "windows; [95% interval of the geometric mean]" in readme
    assert '-m "not slow"' in readme
    assert "15 minutes" in readme
