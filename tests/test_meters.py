"""Meters against fakes at the boundary: NVML counters and CPU times follow a script."""

from collections import namedtuple

import pynvml
import pytest

from profiler.errors import MeterUnavailable
from profiler.meters.base import FLAG_ESTIMATED, FLAG_SHORT_WINDOW
from profiler.meters.estimate import CpuEstimateMeter, busy_fraction
from profiler.meters.nvml import NvmlEnergyMeter
from profiler.meters.select import select_meter
from profiler.timing import TimedWindow
from tests.fakes import FakeGpu, fake_nvml

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait")


def test_nvml_counter_difference_per_gpu_and_total():
    gpus = [FakeGpu("a", energy_mj=[1_000, 1_000, 501_000]),
            FakeGpu("b", energy_mj=[7_000, 7_000, 307_000])]
    meter = NvmlEnergyMeter(nvml=fake_nvml(gpus))  # probe read, then start/stop
    meter.start()
    reading = meter.stop(duration_s=2.0)
    assert [d.energy_j for d in reading.devices] == [500.0, 300.0]
    assert reading.energy_j == 800.0
    assert reading.avg_power_w == 400.0
    assert reading.method == "nvml_counter"
    assert reading.all_flags == ()
    meter.close()


def test_nvml_deduplicates_gpus_by_uuid():
    gpu = FakeGpu("same", energy_mj=[0, 0, 100_000])
    nv = fake_nvml([gpu])
    meter = NvmlEnergyMeter(uuids=["same", "GPU-same"], nvml=nv)
    assert meter.uuids == ["same"]
    meter.start()
    assert meter.stop(1.0).energy_j == 100.0


def test_nvml_follows_cuda_visible_devices(monkeypatch):
    gpus = [FakeGpu("a", energy_mj=[0]), FakeGpu("b", energy_mj=[0])]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    meter = NvmlEnergyMeter(nvml=fake_nvml(gpus))
    assert meter.uuids == ["b"]


def test_nvml_init_failure_is_unavailable_with_reason():
    nv = fake_nvml([], init_error=pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    with pytest.raises(MeterUnavailable, match="NVML failed to initialise"):
        NvmlEnergyMeter(nvml=nv)


def test_pre_volta_counter_unsupported_is_unavailable():
    nv = fake_nvml([FakeGpu("p", name="Tesla P100-PCIE-16GB", energy_supported=False)])
    with pytest.raises(MeterUnavailable, match="Volta or newer"):
        NvmlEnergyMeter(nvml=nv)
    nv.nvmlShutdown.assert_called_once()


def test_select_meter_reports_why_nvml_is_missing():
    nv = fake_nvml([], init_error=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    choice = select_meter("cuda", nvml=nv)
    assert choice.meter is None
    assert "NVML failed to initialise" in choice.reason
    assert choice.tried[0]["available"] is False


def test_busy_fraction():
    before = CpuTimes(10, 0, 10, 80, 0)
    after = CpuTimes(40, 0, 20, 100, 0)  # 40 busy of 60
    assert busy_fraction(before, after) == pytest.approx(40 / 60)
    assert busy_fraction(before, before) == 0.0


def test_cpu_estimate_is_labelled_and_follows_the_model():
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(75, 0, 0, 25, 0)])
    meter = CpuEstimateMeter(100.0, "test", cpu_times=lambda: next(times))
    clock = iter([0.0, 4.0])
    with TimedWindow(meter, clock=lambda: next(clock)) as window:
        pass
    reading = window.energy
    assert window.duration_s == 4.0
    assert reading.estimated
    assert reading.energy_j == pytest.approx(100.0 * 0.75 * 4.0)
    assert reading.devices[0].flags == (FLAG_ESTIMATED,)
    assert reading.method == "estimated"


def test_short_window_is_flagged():
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(1, 0, 0, 0, 0)])
    meter = CpuEstimateMeter(10.0, "test", cpu_times=lambda: next(times))
    meter.start()
    assert FLAG_SHORT_WINDOW in meter.stop(0.1).all_flags


def test_cpu_without_profile_or_tdp_gets_no_meter():
    from hardware_profiles.detect import CpuInfo

    info = CpuInfo("GenuineIntel", 6, 999, "Imaginary CPU", frozenset(), 4, 4, None, None)
    choice = select_meter("cpu", cpu_info=info)
    assert choice.meter is None
    assert "no profile for CPU Imaginary CPU" in choice.reason
    assert "--cpu-tdp-w" in choice.reason
    with_tdp = select_meter("cpu", cpu_info=info, cpu_tdp_w=65)
    assert with_tdp.meter.full_load_power_w == 65


def test_window_stops_meter_when_region_raises():
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(1, 0, 0, 1, 0)])
    meter = CpuEstimateMeter(10.0, "test", cpu_times=lambda: next(times))
    window = TimedWindow(meter)
    with pytest.raises(RuntimeError):
        with window:
            raise RuntimeError("boom")
    assert window.energy is not None
