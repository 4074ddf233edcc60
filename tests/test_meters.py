"""Meters against fakes at the boundary: NVML counters and power traces follow a script,
CPU times are given, and time comes from a fake clock."""

import math
from collections import namedtuple

import pynvml
import pytest

from profiler.errors import MeterUnavailable
from profiler.meters.base import (FLAG_APPROXIMATE, FLAG_COUNTERS_DISAGREE, FLAG_ESTIMATED,
                                  FLAG_THROTTLED)
from profiler.meters.estimate import CpuEstimateMeter, busy_fraction
from profiler.meters.nvml import NvmlMeter
from profiler.meters.sampler import Sampler, trapezoid_j
from profiler.meters.registry import MeterRequest
from profiler.meters.select import select_meter
from profiler.timing import TimedWindow
from tests.fakes import FakeClock, FakeGpu, FakeMig, fake_nvml

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait")

DT = 0.05
DURATION = 10.0
N = round(DURATION / DT)


def power_w(t: float) -> float:
    """300 W with a 100 W, 2 s sine on top: its integral over 10 s is exactly 3000 J."""
    return 300.0 + 100.0 * math.sin(math.pi * t)


def scripted_gpu(counter_j: float = 3000.0, **kwargs) -> FakeGpu:
    trace_mw = [round(power_w(i * DT) * 1e3) for i in range(N + 1)]
    # Reads: the capability probe, then one per poll.
    return FakeGpu("a", energy_mj=[0, 1_000_000, 1_000_000 + round(counter_j * 1e3)],
                   power_mw=[trace_mw[0], *trace_mw], **kwargs)


def run_window(meter: NvmlMeter, clock: FakeClock, duration_s: float = DURATION, n: int = N):
    """Open a window at t=0, poll by hand every DT (the sampler thread never ticks), close."""
    clock.now = 0.0
    meter.start()
    for i in range(1, n):
        clock.now = i * DT
        meter.poll()
    clock.now = duration_s
    return meter.stop(duration_s)


def make_meter(gpus, **kwargs) -> tuple[NvmlMeter, FakeClock]:
    clock = FakeClock()
    meter = NvmlMeter(nvml=fake_nvml(gpus), interval_s=1e6, probe_s=0, clock=clock, **kwargs)
    return meter, clock


def test_integral_of_a_known_trace_is_within_bound_and_agrees_with_the_counter():
    meter, clock = make_meter([scripted_gpu()])
    reading = run_window(meter, clock)
    gpu = reading.devices[0]
    assert gpu.method == "nvml_counter" and gpu.energy_j == pytest.approx(3000.0)
    assert gpu.detail["integral_energy_j"] == pytest.approx(3000.0, rel=0.005)
    assert gpu.detail["relative_disagreement"] < 0.005
    assert gpu.detail["samples"] == N + 1
    assert gpu.peak_power_w == pytest.approx(400.0, abs=0.5)
    assert gpu.avg_power_w == pytest.approx(300.0)
    assert reading.all_flags == ()
    assert len(gpu.power_trace) == N + 1
    meter.close()


def test_counters_that_disagree_are_flagged():
    meter, clock = make_meter([scripted_gpu(counter_j=3300.0)])
    reading = run_window(meter, clock)
    assert FLAG_COUNTERS_DISAGREE in reading.all_flags
    assert reading.devices[0].detail["relative_disagreement"] == pytest.approx(300 / 3300, rel=0.01)
    assert reading.energy_j == pytest.approx(3300.0)  # the counter stays the reported figure


def test_pre_volta_falls_back_to_the_power_integral():
    meter, clock = make_meter([scripted_gpu(energy_supported=False)])
    assert meter.method == "nvml_power_integral"
    reading = run_window(meter, clock)
    gpu = reading.devices[0]
    assert gpu.method == "nvml_power_integral"
    assert gpu.energy_j == pytest.approx(3000.0, rel=0.005)
    assert gpu.detail["counter_energy_j"] is None


def test_power_usage_is_used_without_the_instant_field():
    meter, clock = make_meter([scripted_gpu(instant_power=False)])
    assert meter.describe()["devices"][0]["power_source"] == "power_usage"
    reading = run_window(meter, clock)
    assert reading.devices[0].detail["integral_energy_j"] == pytest.approx(3000.0, rel=0.005)


def test_telemetry_and_throttling_are_recorded():
    meter, clock = make_meter([scripted_gpu(reasons=pynvml.nvmlClocksThrottleReasonHwSlowdown)])
    gpu = run_window(meter, clock).devices[0]
    assert FLAG_THROTTLED in gpu.flags
    assert gpu.detail["clock_event_reasons"] == ["hw_slowdown"]
    assert gpu.detail["sm_clock_mhz"]["median"] == 1980
    assert gpu.detail["temperature_c"]["max"] == 45
    assert gpu.detail["power_limit_w"] == 700.0


def test_idle_reason_alone_is_not_throttling():
    meter, clock = make_meter([scripted_gpu(reasons=pynvml.nvmlClocksThrottleReasonGpuIdle)])
    assert FLAG_THROTTLED not in run_window(meter, clock).devices[0].flags


def test_short_window_with_few_samples_is_approximate():
    meter, clock = make_meter([scripted_gpu()])
    gpu = run_window(meter, clock, duration_s=0.2, n=4).devices[0]
    assert FLAG_APPROXIMATE in gpu.flags
    assert any("power samples" in note for note in gpu.detail["notes"])


def test_update_period_is_probed_and_sets_the_minimum_window():
    # The reading changes every 150 polls of 2 ms: a 0.3 s update period.
    power = [100_000 + 1_000 * (i // 150) for i in range(2000)]
    gpu = FakeGpu("a", power_mw=power)
    clock = FakeClock()
    meter = NvmlMeter(nvml=fake_nvml([gpu]), interval_s=1e6, probe_s=2.0, clock=clock,
                      sleep=clock.sleep)
    assert meter.update_period_s == pytest.approx(0.3, rel=0.02)
    assert meter.min_window_s == pytest.approx(1.5, rel=0.02)


def test_nvml_deduplicates_gpus_by_uuid():
    meter, clock = make_meter([scripted_gpu()], uuids=["a", "GPU-a"])
    assert meter.uuids == ["a"]
    assert len(run_window(meter, clock).devices) == 1


def test_nvml_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    meter, _ = make_meter([FakeGpu("a"), FakeGpu("b")])
    assert meter.uuids == ["b"]


def test_nvml_init_failure_is_unavailable_with_reason():
    nv = fake_nvml([], init_error=pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    with pytest.raises(MeterUnavailable, match="NVML failed to initialise"):
        NvmlMeter(nvml=nv, probe_s=0)


def test_gpu_without_counter_or_power_is_unavailable():
    gpu = FakeGpu("p", name="Tesla K80", energy_supported=False, instant_power=False)
    nv = fake_nvml([gpu])
    nv.nvmlDeviceGetPowerUsage.side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    with pytest.raises(MeterUnavailable, match="neither an energy counter nor power"):
        NvmlMeter(nvml=nv, probe_s=0)
    nv.nvmlShutdown.assert_called_once()


def test_select_meter_reports_why_nvml_is_missing():
    nv = fake_nvml([], init_error=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    choice = select_meter(MeterRequest("nvidia", modules={"pynvml": nv}))
    assert choice.meter is None
    assert "NVML failed to initialise" in choice.reason
    assert choice.tried == [{"method": "nvml", "available": False, "reason": choice.tried[0]["reason"]}]


def test_sampler_polls_in_the_background_and_at_the_edges():
    calls = []
    sampler = Sampler(lambda: calls.append(1), interval_s=0.01)
    sampler.start()
    import time
    time.sleep(0.2)
    sampler.stop()
    assert len(calls) >= 5


def test_sampler_surfaces_an_error_from_its_thread():
    def poll():
        if poll.calls:
            raise OSError("sensor gone")
        poll.calls += 1
    poll.calls = 0
    sampler = Sampler(poll, interval_s=0.01)
    sampler.start()
    import time
    time.sleep(0.1)
    with pytest.raises(OSError, match="sensor gone"):
        sampler.stop()


def test_trapezoid():
    assert trapezoid_j([0, 1, 2], [100, 200, 100]) == 300
    assert trapezoid_j([0], [5]) == 0


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


def test_short_estimate_window_is_approximate():
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(1, 0, 0, 0, 0)])
    meter = CpuEstimateMeter(10.0, "test", cpu_times=lambda: next(times))
    meter.start()
    assert FLAG_APPROXIMATE in meter.stop(0.1).all_flags


def test_cpu_without_profile_gets_a_generic_estimate_with_its_band(tmp_path):
    """Issue 13: a CPU no profile knows still gets an estimated eta, flagged
    generic_cpu_power, with the low/high band of per-core power across the built-in profiles."""
    from hardware_profiles.cpuinfo import CpuInfo
    from hardware_profiles.device import cpu_context, generic_power_per_core_w
    from hardware_profiles.profiles import load_profiles

    info = CpuInfo("GenuineIntel", 6, 999, "Imaginary CPU", frozenset(), 4, 4, None, None)
    profiles = load_profiles()
    ctx = cpu_context(profiles, info)
    choice = select_meter(ctx.meter_request(sysfs_root=str(tmp_path)))
    assert [t["method"] for t in choice.tried] == ["rapl", "estimated"]
    meter = choice.meter
    central, low, high, _ = generic_power_per_core_w(profiles)
    assert meter.generic and meter.full_load_power_w == pytest.approx(4 * central)
    assert (meter.low_w, meter.high_w) == (pytest.approx(4 * low), pytest.approx(4 * high))
    assert low <= central <= high and low < high
    assert "no profile for this CPU" in meter.power_source and "--cpu-tdp-w" in meter.power_source
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(50, 0, 0, 50, 0)])
    meter._cpu_times = lambda: next(times)
    meter._process_times = None  # the (faked) machine's utilisation, not this process's
    meter.start()
    reading = meter.stop(2.0)
    assert "generic_cpu_power" in reading.all_flags and reading.estimated
    lo_j, hi_j = reading.energy_band_j
    assert lo_j == pytest.approx(4 * low * 0.5 * 2.0) and hi_j == pytest.approx(4 * high * 0.5 * 2.0)
    assert lo_j <= reading.energy_j <= hi_j
    with_tdp = select_meter(ctx.meter_request(cpu_tdp_w=65, sysfs_root=str(tmp_path)))
    assert with_tdp.meter.full_load_power_w == 65 and not with_tdp.meter.generic


def test_a_user_profile_reaches_the_energy_estimate(tmp_path):
    """Issue 13: --profile / $ETAMETER_PROFILES give the estimate its power, not only the peak."""
    from hardware_profiles.cpuinfo import CpuInfo
    from hardware_profiles.device import cpu_context
    from hardware_profiles.profiles import load_profiles

    mine = tmp_path / "mine.toml"
    mine.write_text("""schema = 1
[[cpu]]
id = "imaginary"
display_name = "Imaginary CPU"
vendor_id = "GenuineIntel"
cpu_family = 6
models = [999]
flops_per_cycle = { fp32 = 32 }
reference_sku = { name = "Imaginary 1", cores = 8, tdp_w = 80 }
sources = { flops_per_cycle = "test", reference_sku = "test" }
""")
    info = CpuInfo("GenuineIntel", 6, 999, "Imaginary CPU", frozenset(), 4, 4, None, None)
    ctx = cpu_context(load_profiles([mine]), info)
    meter = select_meter(ctx.meter_request(sysfs_root=str(tmp_path))).meter
    assert ctx.profile_id == "imaginary" and not meter.generic
    assert meter.full_load_power_w == pytest.approx(80 / 8 * 4)
    assert "imaginary reference SKU Imaginary 1" in meter.power_source


def test_window_stops_meter_when_region_raises():
    times = iter([CpuTimes(0, 0, 0, 0, 0), CpuTimes(1, 0, 0, 1, 0)])
    meter = CpuEstimateMeter(10.0, "test", cpu_times=lambda: next(times))
    window = TimedWindow(meter)
    with pytest.raises(RuntimeError):
        with window:
            raise RuntimeError("boom")
    assert window.energy is not None


def test_power_cap_alone_is_the_steady_state_not_throttling():
    """A full load at 700 W runs at the power limit: sw_power_cap is recorded, not flagged."""
    meter, clock = make_meter([scripted_gpu(reasons=pynvml.nvmlClocksThrottleReasonSwPowerCap)])
    gpu = run_window(meter, clock).devices[0]
    assert FLAG_THROTTLED not in gpu.flags
    assert gpu.detail["clock_event_reasons"] == ["sw_power_cap"]
    assert gpu.detail["at_power_limit"] is True


def test_counter_update_period_sets_the_minimum_window():
    """The counter steps every 50 polls of 2 ms (0.1 s): a window must be 0.1 / 2% = 5 s long
    for its quantisation to stay under 2%."""
    energy = [1_000 * (i // 50) for i in range(2000)]
    power = [100_000 + 1_000 * (i // 10) for i in range(2000)]  # every 20 ms
    gpu = FakeGpu("a", energy_mj=energy, power_mw=power)
    clock = FakeClock()
    meter = NvmlMeter(nvml=fake_nvml([gpu]), interval_s=1e6, probe_s=1.0, clock=clock,
                      sleep=clock.sleep)
    assert meter.counter_update_period_s == pytest.approx(0.1, rel=0.05)
    assert meter.update_period_s == pytest.approx(0.02, rel=0.05)
    assert meter.min_window_s == pytest.approx(5.0, rel=0.05)
    assert meter.describe()["counter_update_period_s"] == meter.counter_update_period_s


def test_a_transient_power_error_is_counted_and_flagged_not_fatal():
    gpu = scripted_gpu(power_errors={5, 6, 40})
    meter, clock = make_meter([gpu])
    reading = run_window(meter, clock)
    dev = reading.devices[0]
    assert dev.energy_j == pytest.approx(3000.0)  # the counter is fine
    assert dev.detail["sampling_errors"] == 3
    assert "sampling_errors" in dev.flags
    assert any("3 reads failed" in n for n in dev.detail["notes"])


def test_the_sampler_thread_survives_power_errors():
    """With the real sampler thread: every other power read fails, the window still ends."""
    import time as _time

    gpu = FakeGpu("a", energy_mj=[0, 0, 5_000], power_errors=set(range(1, 10_000, 2)))
    meter = NvmlMeter(nvml=fake_nvml([gpu]), interval_s=0.005, probe_s=0)
    meter.start()
    _time.sleep(0.1)
    reading = meter.stop(0.1)
    meter.close()
    dev = reading.devices[0]
    assert dev.energy_j == pytest.approx(5.0) and dev.detail["sampling_errors"] > 0


def test_no_energy_source_left_is_null_energy_with_the_reason():
    gpu = FakeGpu("p", energy_supported=False, power_errors=set(range(1, 10_000)))
    meter, clock = make_meter([gpu])
    dev = run_window(meter, clock).devices[0]
    assert dev.energy_j is None
    assert "no energy source left" in dev.reason and "reads failed" in dev.reason


def test_cuda_ordinals_follow_the_pci_bus_order_not_nvml_indices(monkeypatch):
    # NVML index 0 is the GPU on bus 0x40, index 1 the one on bus 0x18: CUDA's ordinal 0
    # (PCI order, identical GPUs) is "low".
    high, low = FakeGpu("high", bus_id="00000000:40:00.0"), FakeGpu("low", bus_id="00000000:18:00.0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    meter, _ = make_meter([high, low])
    assert meter.uuids == ["low"]


def test_mixed_gpus_without_pci_bus_order_are_refused(monkeypatch):
    gpus = [FakeGpu("a", name="NVIDIA H100 80GB HBM3"), FakeGpu("b", name="NVIDIA A100-SXM4-80GB")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    with pytest.raises(MeterUnavailable, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        make_meter(gpus)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    meter, _ = make_meter(gpus)
    assert meter.uuids == ["b"]


def test_empty_cuda_visible_devices_means_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(MeterUnavailable, match="no GPU visible"):
        make_meter([FakeGpu("a"), FakeGpu("b")])


def test_uuid_prefixes_are_accepted_as_cuda_does(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bb12")
    meter, _ = make_meter([FakeGpu("aa34"), FakeGpu("bb1234")])
    assert meter.uuids == ["bb1234"]


@pytest.mark.parametrize("selector", ["MIG-1111-2222", "MIG-GPU-pp/1/0"])
def test_a_mig_instance_is_metered_through_its_gpu_and_says_so(monkeypatch, selector):
    parent = FakeGpu("pp", energy_mj=[0, 1_000_000, 1_100_000])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", selector)
    clock = FakeClock()
    meter = NvmlMeter(nvml=fake_nvml([FakeGpu("other"), parent],
                                     migs=[FakeMig("1111-2222", parent)]),
                      interval_s=1e6, probe_s=0, clock=clock)
    assert meter.uuids == ["pp"]
    dev = run_window(meter, clock, duration_s=2.0, n=2).devices[0]
    assert any("per GPU, not per instance" in n for n in dev.detail["notes"])
    assert dev.detail["mig_instances"] == [selector]


def test_a_torch_mig_uuid_without_prefix_is_found():
    parent = FakeGpu("pp")
    meter = NvmlMeter(uuids=["1111-2222"], nvml=fake_nvml([parent], migs=[FakeMig("1111-2222", parent)]),
                      interval_s=1e6, probe_s=0)
    assert meter.uuids == ["pp"]
    assert "per GPU" in meter.describe()["mig_notes"][0]
