"""Faults against the meters (issue 22, item 2): no meter can invent energy. A RAPL decrease is
a wrap only when the zone's range and the elapsed time at the most a device can draw explain
it; any other reading that cannot be true (negative, not finite, more power than a device can
draw) becomes null energy with the reason, whatever the meter."""

import math

import pytest

from profiler.measurement import Energy
from profiler.meters.base import (MAX_DEVICE_POWER_W, DeviceEnergy, EnergyReading, implausible,
                                  plausible)
from profiler.meters.estimate import CpuEstimateMeter
from tests.fakes import FakeClock
from tests.test_rapl import BIG, meter_for, set_energy, zone


def rapl_window(tmp_path, readings, max_uj=BIG, start=1_000_000):
    """A RAPL window: the counter at ``start``, then each (t, energy_uj) polled, then stop."""
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", start, max_uj=max_uj)
    clock = FakeClock()
    meter = meter_for(tmp_path, clock)
    meter.start()
    for t, value in readings[:-1]:
        clock.now = t
        set_energy(pkg, value)
        meter.poll()
    clock.now, last = readings[-1]
    set_energy(pkg, last)
    return meter.stop(float(clock.now))


def test_a_counter_that_steps_back_is_a_reset_not_a_262144_joule_wrap(tmp_path):
    reading = rapl_window(tmp_path, [(1.0, 900_000), (2.0, 950_000)])  # -0.1 J, then +0.05 J
    dev = reading.devices[0]
    assert dev.energy_j is None and "counter reset" in dev.reason
    assert "impossible_value" in dev.flags and dev.detail["wraps"] == 0
    energy = Energy.from_reading(reading)
    assert energy.energy_j is None and "counter reset" in energy.reason


def test_a_zone_without_a_range_never_gives_negative_joules(tmp_path):
    reading = rapl_window(tmp_path, [(1.0, 500_000), (2.0, 400_000)], max_uj=0)
    dev = reading.devices[0]
    assert dev.energy_j is None and "counter reset" in dev.reason
    assert reading.energy_j is None


def test_a_real_wrap_at_a_plausible_power_is_still_counted(tmp_path):
    # 100 W for 1 s across the wrap: from 50 J below the range to 50 J past zero.
    reading = rapl_window(tmp_path, [(1.0, 50_000_000), (2.0, 150_000_000)],
                          start=BIG - 50_000_000)
    dev = reading.devices[0]
    assert dev.detail["wraps"] == 1 and dev.reason is None
    assert dev.energy_j == pytest.approx(200.0)


def test_a_wrap_that_needs_more_power_than_a_device_draws_is_a_reset(tmp_path):
    # Wrapping would mean ~131 kJ in 0.1 s (1.3 MW): a reset, not a wrap.
    reading = rapl_window(tmp_path, [(0.1, BIG // 2)], start=BIG - 1)
    assert reading.devices[0].energy_j is None


@pytest.mark.parametrize("energy_j, message", [
    (-5.0, "negative energy"),
    (math.nan, "not a finite energy"),
    (math.inf, "not a finite energy"),
    (262_144.0, "more than a device can draw"),
])
def test_every_meter_reading_that_cannot_be_true_is_null_with_the_reason(energy_j, message):
    for method in ("nvml_counter", "amdsmi_counter", "rapl", "estimated"):
        dev = DeviceEnergy("d", energy_j, method, "gpu_board", peak_power_w=10.0)
        energy = Energy.from_reading(EnergyReading(duration_s=1.0, devices=(dev,)))
        assert energy.energy_j is None and message in energy.reason, method
        assert "impossible_value" in energy.flags


def test_a_peak_power_no_device_draws_is_dropped_and_flagged():
    dev = DeviceEnergy("d", 100.0, "nvml_counter", "gpu_board", peak_power_w=1e7)
    out = plausible(EnergyReading(duration_s=1.0, devices=(dev,))).devices[0]
    assert out.energy_j == 100.0 and out.peak_power_w is None and "impossible_value" in out.flags


def test_a_plausible_reading_passes_unchanged():
    reading = EnergyReading(duration_s=2.0, devices=(DeviceEnergy("d", 600.0, "rapl", "dram"),))
    assert plausible(reading) is reading
    assert implausible(MAX_DEVICE_POWER_W * 2.0, 2.0) is None


def test_an_nvml_counter_that_jumps_is_null_not_a_megawatt():
    from tests.test_meters import make_meter, run_window, scripted_gpu

    meter, clock = make_meter([scripted_gpu(counter_j=1e9)])
    energy = Energy.from_reading(run_window(meter, clock))
    assert energy.energy_j is None and "more than a device can draw" in energy.reason


def test_an_amdsmi_counter_that_jumps_is_null_not_a_megawatt():
    from tests.test_amd import make_meter, run_window, scripted_gpu

    meter, clock, _ = make_meter([scripted_gpu(counter_j=1e9)])
    energy = Energy.from_reading(run_window(meter, clock))
    assert energy.energy_j is None and "more than a device can draw" in energy.reason


def test_an_estimate_from_an_absurd_power_figure_is_null_with_the_reason():
    times = iter([(0, 0, 0, 100, 0), (100, 0, 0, 100, 0)])
    from collections import namedtuple

    cpu = namedtuple("CpuTimes", "user nice system idle iowait")
    meter = CpuEstimateMeter(1e9, "--cpu-tdp-w", cpu_times=lambda: cpu(*next(times)))
    meter.start()
    energy = Energy.from_reading(meter.stop(2.0))
    assert energy.energy_j is None and "more than a device can draw" in energy.reason
