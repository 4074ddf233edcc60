"""Landmark training runs (reports/scaling/landmarks.py, history.py): the sourced dataset, one
run's realised eta by hand, the realised rate beside the hardware rate, the landmark ledger,
the history command and forecast --doublings-per-year realised."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from hardware_profiles.profiles import builtin_profiles
from harness.cli import cli
from profiler.errors import ConfigError, ProfileError
from reports.scaling.frontier import frontier
from reports.scaling.history import history, landmark_ledger, landmark_point, resolve_point, stored_points
from reports.scaling.landmarks import (RANGES, builtin_landmarks, find_landmark, parse_landmarks,
                                       realised)


def test_every_landmark_figure_has_a_source_and_every_run_a_basis():
    runs = builtin_landmarks()
    assert {"gpt3-175b", "bloom-176b", "llama3.1-8b", "llama3.1-70b", "llama3.1-405b",
            "deepseek-v3"} <= {r.id for r in runs}
    profiles = {d.id: d for d in builtin_profiles().devices}
    for run in runs:
        figures = ["date", "accelerator", "precision"] + [k for k in RANGES
                                                          if getattr(run, k) not in (None, ())]
        for key in figures:
            assert run.sources.get(key, "").strip(), (run.id, key)
        assert set(run.unverified) <= set(figures), run.id
        assert run.device_profile is None or run.device_profile in profiles, run.id
        doc = realised(run, builtin_profiles())
        # A basis for every eta, or the reason there is none.
        assert doc["bases"] or doc["reason"], run.id
        for basis in doc["bases"]:
            assert basis["basis"] and basis["scope"] and basis["note"], (run.id, basis)
        assert doc["compute_basis"] in ("given", "6 N D", "6 N_active D (MoE)")


def test_gpt3_realised_eta_by_hand_from_its_sourced_inputs():
    doc = realised(find_landmark("gpt3-175b"), builtin_profiles())
    hours = 10000 * 14.8 * 24  # Patterson et al. Table 4: 10,000 V100 for 14.8 days
    board_j = hours * 3600 * 300  # V100 SXM2 TDP 300 W
    assert doc["accelerator_hours"] == pytest.approx(3.552e6)
    assert doc["eta_flops_per_j"] == pytest.approx(3.14e23 / board_j)  # 8.19e10, a lower bound
    assert doc["eta_flops_per_j"] == pytest.approx(8.186e10, rel=1e-3)
    assert doc["eta_ceiling_flops_per_j"] == pytest.approx(125e12 / 300)  # fp16 tensor peak / TDP
    assert doc["share_of_ceiling"] == pytest.approx(3.14e23 / (hours * 3600 * 125e12))
    facility = {b["basis"]: b["eta_flops_per_j"] for b in doc["bases"]}
    assert facility["published (facility)"] == pytest.approx(3.14e23 / (1287e3 * 3.6e6))
    assert facility["published / PUE (it)"] == pytest.approx(3.14e23 / (1287e3 * 3.6e6 / 1.1))
    assert doc["band"]["low"] == doc["eta_flops_per_j"] and doc["band"]["high"] is None
    assert "lower bound" in doc["band"]["low_rests_on"] and doc["band"]["high_reason"]


def test_bloom_compute_is_6nd_and_moe_uses_active_parameters():
    bloom = realised(find_landmark("bloom-176b"), builtin_profiles())
    assert bloom["compute_basis"] == "6 N D"
    assert bloom["logical_compute_flop"] == pytest.approx(6 * 176247271424 * 366e9)
    assert bloom["eta_flops_per_j"] == pytest.approx(bloom["logical_compute_flop"] / (433196 * 3.6e6))
    ds = realised(find_landmark("deepseek-v3"), builtin_profiles())
    assert ds["compute_basis"] == "6 N_active D (MoE)"
    assert ds["logical_compute_flop"] == pytest.approx(6 * 37e9 * 14.8e12)
    assert ds["eta_flops_per_j"] is None and "H800" in ds["reason"]  # no sourced H800 power


RUN = ('schema = 1\n[[run]]\nid = "x"\nname = "X"\norganisation = "o"\ndate = "2023-01-02"\n'
       'accelerator = "A"\nprecision = "bf16"\nscope = "s"\n')


def _parse(body):
    return parse_landmarks(RUN + body, "t.toml")


def test_landmark_entries_are_validated_with_the_field_named():
    ok = _parse('compute_flop = 1e24\naccelerator_hours = 1e6\ntdp_w = 500\n'
                'sources = { date = "d", accelerator = "a", precision = "p", compute_flop = "c", '
                'accelerator_hours = "h", tdp_w = "t" }\n')
    assert ok[0].logical_compute_flop == 1e24 and ok[0].tdp_w == 500
    src = 'sources = { date = "d", accelerator = "a", precision = "p", accelerator_hours = "h" }\n'
    with pytest.raises(ProfileError, match="sources.compute_flop is missing"):
        _parse('compute_flop = 1e24\naccelerator_hours = 1e6\n' + src)
    with pytest.raises(ProfileError, match="logical compute one way"):
        _parse('compute_flop = 1e24\nparams = 1e9\ntokens = 1e12\naccelerator_hours = 1e6\n' + src)
    with pytest.raises(ProfileError, match="logical compute one way"):
        _parse('params = 1e9\naccelerator_hours = 1e6\n' + src)
    with pytest.raises(ProfileError, match="'accelerator_hours' = 1e\\+12 is not plausible"):
        _parse('compute_flop = 1e24\naccelerator_hours = 1e12\n' + src)
    with pytest.raises(ProfileError, match="energy_scope"):
        _parse('compute_flop = 1e24\naccelerator_hours = 1e6\nenergy_kwh = [1e5]\n'
               'energy_scope = "grid"\nenergy_basis = "b"\n' + src)
    with pytest.raises(ProfileError, match="unknown field"):
        _parse('compute_flop = 1e24\naccelerator_hours = 1e6\neta = 1e11\n' + src)
    with pytest.raises(ProfileError, match="ISO date"):
        parse_landmarks(RUN.replace('"2023-01-02"', '"May 2023"') + 'compute_flop = 1e24\n'
                        'accelerator_hours = 1e6\n' + src, "t.toml")


def test_realised_rate_matches_a_hand_fit_and_splits_exactly():
    doc = history(builtin_profiles())
    rows = [r for r in doc["landmarks"] if r["eta_flops_per_j"]]
    t = np.array([r["t_years"] for r in rows]) - 2020.0
    slope = np.polyfit(t, np.log2([r["eta_flops_per_j"] for r in rows]), 1)[0]
    fit = doc["realised_fit"]
    assert fit["r_per_year"] == pytest.approx(slope) and fit["n"] == len(rows) >= 5
    assert fit["r_low"] < fit["r_per_year"] < fit["r_high"]
    split = doc["split"]
    assert split["ceiling_r_per_year"] + split["share_r_per_year"] == pytest.approx(fit["r_per_year"], abs=1e-12)
    assert doc["hardware_fit"] == frontier(builtin_profiles(), "bf16")["fit"]
    assert [x["id"] for x in doc["left_out"]] == ["deepseek-v3"]


def test_landmark_ledger_terms_sum_exactly_to_the_total():
    p = builtin_profiles()
    doc = landmark_ledger(resolve_point("gpt3-175b", p), resolve_point("LLAMA3.1-405B", p))
    hardware, share = (t["doublings"] for t in doc["terms"])
    assert hardware + share == pytest.approx(doc["total_doublings"], abs=1e-12)
    assert abs(doc["sum_residual"]) < 1e-12
    assert hardware == pytest.approx(math.log2((989.5e12 / 700) / (125e12 / 300)))
    eta_a = 3.14e23 / (10000 * 14.8 * 24 * 3600 * 300)
    eta_b = 3.8e25 / (30.84e6 * 3600 * 700)
    assert doc["total_doublings"] == pytest.approx(math.log2(eta_b / eta_a))
    assert doc["total_band"] == [None, None] and "same fraction" in doc["band_note"]
    assert any("precisions differ" in n for n in doc["notes"])


def _stored(eta=2e9, profile="nvidia-h100-sxm", precision="bf16", estimated=False):
    return {"id": "abcdef0123", "status": "ok", "variant": "bf16", "device": "H100",
            "started_at": "2026-11-30T10:00:00+00:00", "config": {"device": {"profile": profile}},
            "summary": {"eta_flops_per_j": eta, "precision": precision, "energy_estimated": estimated,
                        "energy_method": "nvml"}}


def test_a_stored_run_against_a_landmark():
    p = builtin_profiles()
    points, skipped = stored_points([_stored(), {"id": "f", "status": "failed", "summary": {}}], p)
    assert len(points) == 1 and skipped[0]["run_id"] == "f"
    assert points[0]["share_of_ceiling"] == pytest.approx(2e9 / (989.5e12 / 700))
    doc = landmark_ledger(landmark_point(realised(find_landmark("llama3.1-405b"), p)), points[0])
    assert doc["terms"][0]["doublings"] == 0.0  # same board, same precision
    assert sum(t["doublings"] for t in doc["terms"]) == pytest.approx(doc["total_doublings"], abs=1e-12)
    assert any("bases differ" in n for n in doc["notes"])
    cpu, _ = stored_points([_stored(profile="amd-zen4-genoa", estimated=True)], p)
    with pytest.raises(ConfigError, match="no hardware ceiling"):
        landmark_ledger(points[0], cpu[0])


def test_history_command_json_gives_both_rates_and_the_ledger(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "none.db")
    out = runner.invoke(cli, ["history", "--db", db, "--json", "--from", "gpt3-175b",
                              "--to", "llama3.1-405b"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    fit = doc["realised_fit"]
    assert fit["r_low"] is not None and fit["r_high"] is not None
    assert doc["hardware_fit"]["r_per_year"] > 0 and doc["hardware_precision"] == "bf16"
    assert doc["ledger"]["total_doublings"] == pytest.approx(
        sum(t["doublings"] for t in doc["ledger"]["terms"]), abs=1e-12)
    assert not (tmp_path / "none.db").exists()
    text = runner.invoke(cli, ["history", "--db", db, "--plot", str(tmp_path / "h.svg")])
    assert text.exit_code == 0, text.output
    assert "realised rate r:" in text.output and "hardware rate" in text.output
    assert "terms sum to the total" not in text.output  # no ledger asked for
    assert (tmp_path / "h.svg").read_text().startswith("<?xml")
    bad = runner.invoke(cli, ["history", "--db", db, "--from", "gpt3-175b"])
    assert bad.exit_code == 1 and "--from and --to together" in bad.output
    bad = runner.invoke(cli, ["history", "--db", db, "--from", "gpt3-175b", "--to", "gpt-5"])
    assert bad.exit_code == 1 and "no landmark" in bad.output and "Traceback" not in bad.output


def test_forecast_with_the_realised_rate_prints_a_years_range(tmp_path):
    out = CliRunner().invoke(cli, ["forecast", "--target-loss", "1.9", "--eta", "5e11",
                                   "--budget-j-per-year", "1e11", "--years", "10",
                                   "--doublings-per-year", "realised", "--db", str(tmp_path / "n.db")])
    assert out.exit_code == 0, out.output
    assert "from realised: landmark training runs" in out.output
    assert "differs from the hardware frontier's bf16 rate" in out.output
    assert "years to make them at r:" in out.output and "range from r's 95% interval:" in out.output
    doc = json.loads(CliRunner().invoke(cli, [
        "forecast", "--target-loss", "1.9", "--eta", "5e11", "--budget-j-per-year", "1e11",
        "--years", "10", "--doublings-per-year", "realised", "--json"]).output)
    assert doc["doublings_per_year"] == pytest.approx(history(builtin_profiles())["realised_fit"]["r_per_year"])
    assert doc["years_at_r_low"] is not None


def test_history_places_stored_runs_and_ledgers_a_landmark_against_one(db_path, tmp_path):
    from profiler.store import Store
    from tests.test_reports import add_run

    run_id = add_run(Store(db_path), "fp32", 4, 1000.0)  # a CPU run: estimated energy, no ceiling
    runner = CliRunner()
    doc = json.loads(runner.invoke(cli, ["history", "--db", db_path, "--json"]).output)
    (point,) = doc["stored"]
    assert point["id"] == run_id and point["estimated"] and point["share_of_ceiling"] is None
    assert point["ceiling_reason"]
    out = runner.invoke(cli, ["history", "--db", db_path, "--plot", str(tmp_path / "h.png")])
    assert out.exit_code == 0 and "(estimated)" in out.output and (tmp_path / "h.png").exists()
    bad = runner.invoke(cli, ["history", "--db", db_path, "--from", "gpt3-175b", "--to", run_id[:8]])
    assert bad.exit_code == 1 and "no hardware ceiling" in bad.output


def test_a_measured_board_energy_bounds_the_band_from_above_and_the_ledger_carries_it():
    p = builtin_profiles()
    src = ('sources = { date = "d", accelerator = "a", precision = "p", compute_flop = "c", '
           'accelerator_hours = "h", energy_kwh = "e" }\n')
    (run,) = parse_landmarks(RUN.replace('"A"', '"H100"') + 'device_profile = "nvidia-h100-sxm"\n'
                             'compute_flop = 1e24\naccelerator_hours = 1e6\nenergy_kwh = [3.5e5]\n'
                             'energy_scope = "accelerator"\nenergy_basis = "metered"\n' + src, "t.toml")
    doc = realised(run, p)
    low, high = 1e24 / (1e6 * 3600 * 700), 1e24 / (3.5e5 * 3.6e6)  # TDP basis; measured (500 W mean)
    assert doc["band"]["low"] == pytest.approx(low) and doc["band"]["high"] == pytest.approx(high)
    assert doc["band"]["high_reason"] is None and "measured board energy" in doc["band"]["high_rests_on"]
    assert doc["share_high"] == pytest.approx(high / (989.5e12 / 700))
    base = landmark_point(realised(find_landmark("llama3.1-405b"), p))
    ledger = landmark_ledger(base, landmark_point(doc))
    lo, hi = ledger["total_band"]
    assert lo is None and hi == pytest.approx(math.log2(high / base["eta_low"]))
    assert ledger["terms"][1]["band_high"] == pytest.approx(hi - ledger["terms"][0]["doublings"])
