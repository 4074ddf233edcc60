"""The hardware efficiency frontier (reports/scaling/frontier.py): release dates on every
built-in profile, the fit of r against a hand computation over the same data, the rate of
stored runs, the frontier command, and the H200 NVL dense peaks."""

import json
import math
from datetime import date

import numpy as np
import pytest
from click.testing import CliRunner

from hardware_profiles.profiles import builtin_profiles, parse_profile_text
from harness.cli import cli
from profiler.errors import ConfigError, ProfileError
from reports.scaling.frontier import fit_rate, frontier, run_points, runs_rate


def test_every_builtin_device_has_a_sourced_release_date():
    for d in builtin_profiles().devices:
        assert d.release_date, d.id
        assert date.fromisoformat(d.release_date).year >= 2017, d.id
        assert d.sources.get("release_date"), d.id


def test_h200_nvl_dense_peaks_are_half_the_sparse_datasheet_figures():
    d = next(p for p in builtin_profiles().devices if p.id == "nvidia-h200-nvl")
    # Datasheet, with sparsity: tf32 835, bf16/fp16 1671, fp8/int8 3341 TFLOPS.
    assert d.peak("bf16") == d.peak("fp16") == 835.5e12
    assert d.peak("fp8") == d.peak("int8") == 1670.5e12
    assert d.peak("tf32") == 417.5e12


BASE = ('schema = 1\n[[device]]\nid = "x"\ndisplay_name = "X"\nvendor = "v"\nnames = ["X"]\n'
        'peak_tflops = { bf16 = 100 }\n')


def test_release_date_is_validated_and_needs_a_source():
    ok = parse_profile_text(BASE + 'release_date = "2023-03-21"\n'
                            'sources = { peak_tflops = "s", release_date = "s" }\n', "t.toml")
    assert ok.devices[0].release_date == "2023-03-21"
    unquoted = parse_profile_text(BASE + 'release_date = 2023-03-21\n'
                                  'sources = { peak_tflops = "s", release_date = "s" }\n', "t.toml")
    assert unquoted.devices[0].release_date == "2023-03-21"
    with pytest.raises(ProfileError, match="ISO date"):
        parse_profile_text(BASE + 'release_date = "March 2023"\n'
                           'sources = { peak_tflops = "s", release_date = "s" }\n', "t.toml")
    with pytest.raises(ProfileError, match="sources.release_date"):
        parse_profile_text(BASE + 'release_date = "2023-03-21"\nsources = { peak_tflops = "s" }\n',
                           "t.toml")


def _year(iso):
    d = date.fromisoformat(iso)
    return d.year + (d - date(d.year, 1, 1)).days / (date(d.year + 1, 1, 1) - date(d.year, 1, 1)).days


def test_bf16_frontier_fit_matches_a_hand_computation():
    devices = [d for d in builtin_profiles().devices
               if d.peak("bf16") and d.tdp_w and d.release_date]
    t = np.array([_year(d.release_date) for d in devices])
    y = np.log2([d.peak("bf16") / d.tdp_w for d in devices])
    slope, intercept = np.polyfit(t - 2020.0, y, 1)
    resid = y - (intercept + slope * (t - 2020.0))
    n = len(devices)
    se = math.sqrt((resid ** 2).sum() / (n - 2) / ((t - t.mean()) ** 2).sum())
    assert n == 16  # every profile but V100 (fp16 only, no bf16)
    t975_14 = 2.145  # Student t, 0.975 quantile, 14 degrees of freedom (printed tables)

    doc = frontier(builtin_profiles(), "bf16")
    fit = doc["fit"]
    assert fit["n"] == n and sorted(fit["labels"]) == sorted(d.id for d in devices)
    assert fit["r_per_year"] == pytest.approx(slope, rel=1e-9)
    assert fit["a_log2"] == pytest.approx(intercept, rel=1e-9)
    assert fit["se_r"] == pytest.approx(se, rel=1e-9)
    assert fit["r_low"] == pytest.approx(slope - t975_14 * se, rel=1e-9)
    assert fit["r_high"] == pytest.approx(slope + t975_14 * se, rel=1e-9)
    assert 0.1 < fit["r_per_year"] < 0.3  # about a doubling every 4-10 years at TDP
    v100 = next(r for r in doc["devices"] if r["id"] == "nvidia-v100-sxm2")
    assert v100["eta_ceiling_flops_per_j"] is None and "no bf16 peak" in v100["reason"]
    h100 = next(r for r in doc["devices"] if r["id"] == "nvidia-h100-sxm")
    assert h100["eta_ceiling_flops_per_j"] == pytest.approx(989.5e12 / 700)  # theory.md: 1.41e12


def test_fit_of_two_points_is_exact_and_has_no_interval():
    fit = fit_rate([("a", 2020.0, 1e12), ("b", 2022.0, 4e12)])
    assert fit.r_per_year == pytest.approx(1.0) and fit.r_low is None
    assert "three" in fit.interval_reason
    with pytest.raises(ConfigError, match="same date"):
        fit_rate([("a", 2020.0, 1e12), ("b", 2020.0, 4e12)])


def _run(run_id, profile, eta, estimated=False, status="ok"):
    return {"id": run_id, "status": status, "device": profile, "config": {"device": {"profile": profile}},
            "summary": {"eta_flops_per_j": eta, "energy_estimated": estimated}}


def test_rate_of_stored_runs_takes_each_devices_best_eta():
    runs = [_run("a1", "nvidia-a100-sxm-40gb", 2e11), _run("a2", "nvidia-a100-sxm-40gb", 3e11),
            _run("h1", "nvidia-h100-sxm", 6e11), _run("c1", "amd-zen3", 1e10),
            _run("e1", "nvidia-b200", 9e11, estimated=True)]
    points, skipped = run_points(runs, builtin_profiles())
    assert [p["run_id"] for p in points] == ["a2", "h1"]
    assert {s["run_id"] for s in skipped} == {"c1", "e1"}  # a1 is beaten, not skipped
    rate = runs_rate(runs, builtin_profiles())
    years = _year("2022-03-22") - _year("2020-05-14")
    assert rate["r"] == pytest.approx(math.log2(6e11 / 3e11) / years)
    assert rate["low"] is None and "your stored runs" in rate["source"]
    with pytest.raises(ConfigError, match="at least two devices"):
        runs_rate(runs[:2], builtin_profiles())


def test_frontier_command(tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["frontier", "--db", str(tmp_path / "none.db"),
                              "--plot", str(tmp_path / "f.svg")])
    assert out.exit_code == 0, out.output
    assert "doublings/year, 95% interval [" in out.output and "not in the fit: NVIDIA V100" in out.output
    assert (tmp_path / "f.svg").read_text().startswith("<?xml")
    assert not (tmp_path / "none.db").exists()  # reading the frontier creates no database
    doc = json.loads(runner.invoke(cli, ["frontier", "--precision", "fp16", "--vendor", "nvidia",
                                         "--db", str(tmp_path / "none.db"), "--json"]).output)
    assert doc["fit"]["n"] == 15 and all(d["vendor"] == "nvidia" for d in doc["devices"])
