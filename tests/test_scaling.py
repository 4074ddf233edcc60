"""The scaling-burden calculator against every case in theory.md, and the fitter."""

import json
import math
import random

import pytest
from click.testing import CliRunner

from harness.cli import cli
from reports.scaling import burden
from reports.scaling.fit import fit_chinchilla, fit_compute, read_points
from reports.scaling.forecast import EtaSource, figure1_curves, forecast
from reports.scaling.laws import PF_DAY_FLOP, ComputeLaw, get_law
from profiler.errors import ConfigError

CHIN = get_law("chinchilla")


def test_chinchilla_conversion_to_the_compute_law():
    assert CHIN.g == pytest.approx(1.34471, rel=1e-5)
    assert CHIN.alpha_c == pytest.approx(0.15355, abs=1e-5)
    law = CHIN.compute_law()
    assert law.a == pytest.approx(1071.4, rel=1e-4)
    assert law.l_inf == 1.69


def test_chinchilla_optimum_at_5_76e23():
    n, d = CHIN.optimal(5.76e23)
    assert n == pytest.approx(3.219e10, rel=1e-3)
    assert d == pytest.approx(2.982e12, rel=1e-3)
    assert 6 * n * d == pytest.approx(5.76e23)
    assert CHIN.loss(n, d) == pytest.approx(1.9307, abs=1e-4)
    assert CHIN.compute_law().loss(5.76e23) == pytest.approx(1.9307, abs=1e-4)


@pytest.mark.parametrize("loss, compute", [(2.0, 1.110e23), (1.9, 1.403e24)])
def test_compute_for_a_target_loss(loss, compute):
    assert CHIN.compute_law().compute_for_loss(loss) == pytest.approx(compute, rel=1e-3)


def test_kaplan():
    law = get_law("kaplan")
    assert law.loss(PF_DAY_FLOP) == pytest.approx(2.6581, abs=1e-4)
    assert law.compute_for_loss(2.0) / PF_DAY_FLOP == pytest.approx(295.6, rel=1e-3)


@pytest.mark.parametrize("years, compute", [(1, 2.151e27), (5, 2.419e28), (10, 1.610e29)])
def test_doubling_integral(years, compute):
    assert burden.cumulative_compute(3.6e15, 5e11, 0.5, years) == pytest.approx(compute, rel=1e-3)


def test_doubling_integral_limits():
    assert burden.cumulative_compute(3.6e15, 5e11, 0.5, 0) == 0
    assert burden.cumulative_compute(3.6e15, 5e11, 1e-9, 2) == pytest.approx(3.6e15 * 5e11 * 2, rel=1e-6)
    assert burden.cumulative_compute(3.6e15, 5e11, 0.0, 2) == 3.6e15 * 5e11 * 2
    t = burden.years_to_compute(2.419e28, 3.6e15, 5e11, 0.5)
    assert t == pytest.approx(5, rel=1e-3)
    assert burden.eta_at(5e11, 0.5, 4) == 2e12


@pytest.mark.parametrize("ratio, expected", [(2, 0.9659), (10, 0.8913)])
def test_excess_loss_ratio(ratio, expected):
    assert burden.relative_excess_loss(ratio, 0.05) == pytest.approx(expected, abs=1e-4)


def test_doublings_needed():
    # Need 2e24 FLOP with 1e12 J: eta_required = 2e12 = 4 x 5e11 -> 2 doublings.
    assert burden.doublings_needed(2e24, 1e12, 5e11) == pytest.approx(2.0)


def test_unrounded_and_epoch_presets():
    unrounded, epoch = get_law("chinchilla-unrounded"), get_law("epoch-2024")
    assert unrounded.a == pytest.approx(0.33917084) and "TeX" in unrounded.source
    assert (epoch.e_irr, epoch.a_coef, epoch.b_coef, epoch.a, epoch.b) == \
        (1.817, 482.01, 2085.43, 0.3478, 0.3658)
    with pytest.raises(ConfigError, match="unknown law"):
        get_law("gopher")


def test_target_below_irreducible_loss_is_refused():
    with pytest.raises(ConfigError, match="irreducible"):
        CHIN.compute_law().compute_for_loss(1.5)


def test_figure1_reference_and_moore_line():
    data = figure1_curves(0.05, years=10, points=11)
    assert data["moore_r"] == 0.5
    assert data["curves"][0.0][0] == pytest.approx(1.0)  # year 1 at r = 0 is the reference
    assert data["curves"][2.0][-1] < data["curves"][0.5][-1] < data["curves"][0.0][-1]


def test_acceptance_command():
    result = CliRunner().invoke(cli, ["forecast", "--law", "chinchilla", "--target-loss", "1.9",
                                      "--eta", "5e11", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["logical_compute_flop"] == pytest.approx(1.403e24, rel=0.005)
    assert doc["energy_j"] == pytest.approx(2.81e12, rel=0.005)
    assert doc["energy_mwh"] == pytest.approx(doc["energy_j"] / 3.6e9)
    assert doc["eta_source"] == "--eta given by the user"
    assert doc["wall_clock_s"] is None and "power" in doc["reasons"]["wall_clock_s"]


def test_full_forecast_figures():
    eta = EtaSource(5e11, "test")
    doc = forecast(CHIN, eta, target_loss=1.9, power_w=700, devices=1000, mfu=0.4,
                   peak_flops_per_s=989.5e12, budget_j_per_year=1e11, years=10,
                   doublings_per_year=0.5, price_per_kwh=0.1)
    assert doc["wall_clock_s"] == pytest.approx(doc["energy_j"] / 700e3)
    assert doc["device_hours"] == pytest.approx(doc["energy_j"] / 700 / 3600)
    assert doc["wall_clock_from_mfu_s"] == pytest.approx(doc["logical_compute_flop"] / (1000 * 0.4 * 989.5e12))
    assert doc["cost"] == pytest.approx(doc["energy_j"] / 3.6e6 * 0.1)
    expected = math.log2(doc["logical_compute_flop"] / 1e12 / 5e11)
    assert doc["doublings_needed"] == pytest.approx(expected)
    assert doc["years_at_r"] == pytest.approx(expected / 0.5)
    assert burden.cumulative_compute(1e11, 5e11, 0.5, doc["years_to_target_with_growth"]) == \
        pytest.approx(doc["logical_compute_flop"])


def test_params_and_tokens_target():
    doc = forecast(CHIN, EtaSource(5e11, "t"), n_params=70e9, n_tokens=1.4e12)
    assert doc["logical_compute_flop"] == pytest.approx(6 * 70e9 * 1.4e12)
    assert doc["target_loss"] == pytest.approx(CHIN.loss(70e9, 1.4e12))


def test_estimated_eta_is_refused_unless_allowed():
    eta = EtaSource(1e9, "run x (estimated)", estimated=True)
    with pytest.raises(ConfigError, match="--allow-estimated"):
        forecast(CHIN, eta, target_loss=2.0)
    assert forecast(CHIN, eta, target_loss=2.0, allow_estimated=True)["eta_estimated"] is True


def test_eta_from_a_stored_run(db_path):
    from tests.test_reports import add_run
    from profiler.store import Store

    store = Store(db_path)
    run_id = add_run(store, "fp32", 4, 1000.0, factors=(1.0, 1.0, 1.0),
                     scenario="train")  # estimated energy, eta 1e8
    runner = CliRunner()
    refused = runner.invoke(cli, ["forecast", "--target-loss", "2.0", "--run", run_id[:8],
                                  "--db", db_path, "--json"])
    assert refused.exit_code == 1 and "--allow-estimated" in refused.output
    result = runner.invoke(cli, ["forecast", "--target-loss", "2.0", "--device", "EPYC",
                                 "--allow-estimated", "--db", db_path, "--json"])
    doc = json.loads(result.stdout)
    assert doc["eta_flops_per_j"] == pytest.approx(1e8)  # the summary (median) eta of the run
    assert run_id[:8] in doc["eta_source"] and doc["eta_estimated"] is True


def test_forecast_plot_and_custom_law(tmp_path):
    out = tmp_path / "fig.svg"
    result = CliRunner().invoke(cli, ["forecast", "--law-constants", "l_inf=1.5,a=500,alpha=0.1",
                                      "--compute", "1e24", "--eta", "1e12", "--plot", str(out),
                                      "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["law"]["name"] == "custom"
    assert doc["target_loss"] == pytest.approx(1.5 + 500 * 1e24 ** -0.1)
    assert "<svg" in out.read_text()


def test_fitter_recovers_the_compute_law():
    true = ComputeLaw(l_inf=1.7, a=1000.0, alpha=0.15)
    rng = random.Random(1)
    points = [(10 ** (17 + i / 3), true.loss(10 ** (17 + i / 3)) * math.exp(rng.gauss(0, 0.003)))
              for i in range(24)]
    result = fit_compute(points, bootstrap=10)
    assert result.law.alpha == pytest.approx(0.15, abs=0.01)
    assert result.law.l_inf == pytest.approx(1.7, abs=0.03)
    low, high = result.intervals["alpha"]
    assert low <= result.law.alpha <= high


def test_fitter_recovers_chinchilla_constants(tmp_path):
    rng = random.Random(0)
    rows = ["N,D,L"]
    for n in (1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10):
        for d in (1e8, 3e8, 1e9, 3e9, 1e10, 3e10, 1e11):
            rows.append(f"{n},{d},{CHIN.loss(n, d) * math.exp(rng.gauss(0, 0.005))}")
    path = tmp_path / "points.csv"
    path.write_text("\n".join(rows))
    kind, points = read_points(path)
    assert kind == "chinchilla" and len(points) == 49
    result = fit_chinchilla(points, bootstrap=10)
    law = result.law
    assert law.a == pytest.approx(0.34, abs=0.02)
    assert law.b == pytest.approx(0.28, abs=0.02)
    assert law.e_irr == pytest.approx(1.69, abs=0.06)
    assert law.compute_law().alpha == pytest.approx(CHIN.alpha_c, abs=0.01)


def test_bad_fit_input(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError, match="needs columns C,L or N,D,L"):
        read_points(path)
    with pytest.raises(ConfigError, match="at least 4 points"):
        fit_compute([(1e20, 2.0), (1e21, 1.9)])


def test_frontier_rate_carries_its_interval_into_the_years():
    result = CliRunner().invoke(cli, ["forecast", "--target-loss", "1.9", "--eta", "1e12",
                                      "--budget-j-per-year", "1e11", "--years", "5",
                                      "--doublings-per-year", "frontier", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    r, low, high = (doc["doublings_per_year"], doc["doublings_per_year_low"],
                    doc["doublings_per_year_high"])
    assert low < r < high and "hardware frontier: bf16" in doc["doublings_per_year_source"]
    needed = doc["doublings_needed"]
    assert doc["years_at_r"] == pytest.approx(needed / r)
    assert doc["years_at_r_low"] == pytest.approx(needed / high)
    c = doc["logical_compute_flop"]
    assert doc["years_to_target_with_growth_low"] == pytest.approx(burden.years_to_compute(c, 1e11, 1e12, high))
    # The bf16 frontier's interval reaches below zero: the doublings have no upper bound in years,
    # but compute still accumulates at constant or slowly falling efficiency.
    assert low < 0 and doc["years_at_r_high"] is None
    assert "no upper bound" in doc["reasons"]["years_at_r_range"]
    assert doc["years_to_target_with_growth_high"] == pytest.approx(burden.years_to_compute(c, 1e11, 1e12, low))
    text = CliRunner().invoke(cli, ["forecast", "--target-loss", "1.9", "--eta", "1e12",
                                    "--budget-j-per-year", "1e11", "--years", "5",
                                    "--doublings-per-year", "frontier", "--frontier-precision", "fp16"]).output
    assert "doubling rate r: " in text and "from hardware frontier: fp16" in text
    assert "years to the target with doubling: " in text and "range from r's 95% interval" in text


def test_doublings_per_year_runs_needs_two_dated_devices(db_path):
    from profiler.store import Store
    from tests.test_reports import add_run

    add_run(Store(db_path), "fp32", 4, 1000.0)  # a CPU run: its profile has no release date
    result = CliRunner().invoke(cli, ["forecast", "--target-loss", "2.0", "--eta", "1e12",
                                      "--budget-j-per-year", "1e11", "--years", "5",
                                      "--doublings-per-year", "runs", "--allow-estimated",
                                      "--db", db_path])
    assert result.exit_code == 1 and "at least two devices" in result.output
    assert "no release date" in result.output
    bad = CliRunner().invoke(cli, ["forecast", "--target-loss", "2.0", "--eta", "1e12",
                                   "--doublings-per-year", "moore"])
    assert bad.exit_code == 1 and "'frontier' or 'runs'" in bad.output


def test_text_labels_estimates_gives_reasons_and_one_time_unit():
    from reports.scaling.text import forecast_lines

    eta = EtaSource(1e9, "run x", estimated=True, avg_power_w=100.0)
    doc = forecast(CHIN, eta, target_loss=2.0, allow_estimated=True, price_per_kwh=0.2,
                   budget_j_per_year=1e15, years=5, doublings_per_year=0.5)
    lines = forecast_lines(doc)
    text = "\n".join(lines)
    assert next(x for x in lines if x.startswith("device-hours:")).endswith("(estimated)")
    assert "wall-clock on 1 device(s), days:" in text and ", s:" not in text
    assert "wall-clock from MFU on 1 device(s), days: n/a (needs --mfu" in text
    assert "cost (in the currency of --price-per-kwh): " in text
    for line in lines:
        if "n/a" in line:
            assert line.rstrip().endswith(")"), line  # every n/a carries its reason
    assert "device_hours" in doc["estimated_figures"] and "years_at_r" in doc["estimated_figures"]
    usd = forecast_lines(forecast(CHIN, EtaSource(1e12, "t"), target_loss=2.0, price_per_kwh=0.2,
                                  currency="USD"))
    assert any(x.startswith("cost, USD: ") for x in usd)
    assert not any("(estimated)" in x for x in usd)
