"""AMD Instinct support against an autospec'd amdsmi (no GPU, no ROCm): the meter, the
registries, the vendor identity and detection."""

import math

import pytest

from hardware_profiles.detect import match_gpu_info
from hardware_profiles.device import gpu_context
from hardware_profiles.identity import GpuIdentity
from hardware_profiles.profiles import load_profiles
from hardware_profiles.vendors import vendors
from hardware_profiles.vendors.amd import read_gpus
from profiler.errors import MeterUnavailable
from profiler.meters.amd import AmdSmiMeter, load_amdsmi
from profiler.meters.base import FLAG_APPROXIMATE, FLAG_COUNTERS_DISAGREE, FLAG_THROTTLED
from profiler.meters.registry import MeterRequest, specs
from profiler.meters.select import select_meter
from tests.fakes import FakeClock
from tests.fakes_amd import API, FakeAmdGpu, fake_amdsmi

DT = 0.05
DURATION = 10.0
N = round(DURATION / DT)
RESOLUTION_UJ = 15.3


def power_w(t: float) -> float:
    """300 W with a 100 W, 2 s sine on top: its integral over 10 s is exactly 3000 J."""
    return 300.0 + 100.0 * math.sin(math.pi * t)


def scripted_gpu(counter_j: float = 3000.0, uuid: str = "a", **kwargs) -> FakeAmdGpu:
    trace = [power_w(i * DT) for i in range(N + 1)]
    ticks = round(counter_j * 1e6 / RESOLUTION_UJ)  # the accumulator counts resolution units
    start = 10**9
    # Reads: the capability probe, then one per poll.
    return FakeAmdGpu(uuid, energy=[5, start, start + ticks], resolution=RESOLUTION_UJ,
                      power_w=[trace[0], *trace], **kwargs)


def make_meter(gpus, **kwargs) -> tuple[AmdSmiMeter, FakeClock, object]:
    clock = FakeClock()
    smi = fake_amdsmi(gpus)
    return AmdSmiMeter(amdsmi=smi, interval_s=1e6, clock=clock, **kwargs), clock, smi


def run_window(meter: AmdSmiMeter, clock: FakeClock, duration_s: float = DURATION, n: int = N):
    """Open a window at t=0, poll by hand every DT (the sampler thread never ticks), close."""
    clock.now = 0.0
    meter.start()
    for i in range(1, n):
        clock.now = i * DT
        meter.poll()
    clock.now = duration_s
    return meter.stop(duration_s)


# -- the meter ---------------------------------------------------------------------------------

def test_counter_energy_agrees_with_the_power_integral():
    meter, clock, smi = make_meter([scripted_gpu()])
    reading = run_window(meter, clock)
    gpu = reading.devices[0]
    assert gpu.method == "amdsmi_counter" and gpu.scope == "gpu_board"
    assert gpu.energy_j == pytest.approx(3000.0, rel=1e-6)  # uJ = accumulator x resolution
    assert gpu.detail["integral_energy_j"] == pytest.approx(3000.0, rel=0.005)
    assert gpu.detail["relative_disagreement"] < 0.005
    assert gpu.detail["samples"] == N + 1
    assert gpu.detail["power_source"] == "current_socket_power"
    assert gpu.peak_power_w == pytest.approx(400.0, abs=0.5)
    assert reading.all_flags == ()
    # Telemetry errors are swallowed by design, so its values prove the calls' signatures.
    assert gpu.detail["gfx_clock_mhz"]["median"] == 2100
    assert gpu.detail["mem_clock_mhz"]["median"] == 1300
    assert gpu.detail["temperature_c"]["max"] == 50
    assert gpu.detail["power_limit_w"] == 750.0  # the cap is in uW
    meter.close()
    smi.amdsmi_shut_down.assert_called_once()


def test_legacy_energy_key_is_read():
    meter, clock, _ = make_meter([scripted_gpu(legacy_energy_key=True)])
    assert run_window(meter, clock).energy_j == pytest.approx(3000.0, rel=1e-6)


def test_counters_that_disagree_are_flagged():
    meter, clock, _ = make_meter([scripted_gpu(counter_j=3300.0)])
    reading = run_window(meter, clock)
    assert FLAG_COUNTERS_DISAGREE in reading.all_flags
    assert reading.devices[0].detail["relative_disagreement"] == pytest.approx(300 / 3300, rel=0.01)
    assert reading.energy_j == pytest.approx(3300.0, rel=1e-6)  # the counter stays reported


def test_no_counter_falls_back_to_the_power_integral():
    meter, clock, _ = make_meter([scripted_gpu(energy_supported=False, instant_power=False)])
    assert meter.method == "amdsmi_power_integral"
    gpu = run_window(meter, clock).devices[0]
    assert gpu.method == "amdsmi_power_integral"
    assert gpu.energy_j == pytest.approx(3000.0, rel=0.005)
    assert gpu.detail["counter_energy_j"] is None
    assert gpu.detail["power_source"] == "average_socket_power"


def test_counter_going_backwards_uses_the_integral():
    gpu = scripted_gpu()
    gpu.energy = [5, 10**9, 10]  # a driver reload between the edges
    meter, clock, _ = make_meter([gpu])
    device = run_window(meter, clock).devices[0]
    assert device.method == "amdsmi_power_integral"
    assert device.energy_j == pytest.approx(3000.0, rel=0.005)
    assert any("backwards" in note for note in device.detail["notes"])


def test_short_window_with_few_samples_is_approximate():
    meter, clock, _ = make_meter([scripted_gpu()])
    gpu = run_window(meter, clock, duration_s=0.2, n=4).devices[0]
    assert FLAG_APPROXIMATE in gpu.flags
    assert any("power samples" in note for note in gpu.detail["notes"])
    assert any("window 0.200 s" in note for note in gpu.detail["notes"])


def test_power_violation_is_throttling():
    meter, clock, _ = make_meter([scripted_gpu(violations={"active_ppt_pwr": True})])
    gpu = run_window(meter, clock).devices[0]
    assert FLAG_THROTTLED in gpu.flags
    assert gpu.detail["violations"] == ["power_cap"]


def test_gpus_are_selected_by_uuid_and_deduplicated():
    a = scripted_gpu(uuid="3dff74a1-0000-1000-8045-c5e28c8c52d9")
    b = scripted_gpu(uuid="4eff74a1-0000-1000-8045-c5e28c8c52da")
    meter, clock, _ = make_meter([a, b], uuids=["GPU-3DFF74A1-0000-1000-8045-C5E28C8C52D9",
                                                "3dff74a1-0000-1000-8045-c5e28c8c52d9"])
    assert meter.uuids == ["3dff74a1-0000-1000-8045-c5e28c8c52d9"]
    assert len(run_window(meter, clock).devices) == 1
    everything, _, _ = make_meter([a, b])
    assert len(everything.uuids) == 2


def test_unknown_uuid_is_unavailable_and_names_what_amdsmi_sees():
    with pytest.raises(MeterUnavailable, match="cannot find GPU zz.*sees a"):
        make_meter([scripted_gpu()], uuids=["zz"])


def test_gpu_without_counter_or_power_is_unavailable():
    gpu = scripted_gpu(energy_supported=False)
    smi = fake_amdsmi([gpu])
    smi.amdsmi_get_power_info.side_effect = API.AmdSmiLibraryException(
        API.amdsmi_wrapper.AMDSMI_STATUS_NOT_SUPPORTED)
    with pytest.raises(MeterUnavailable, match="neither an energy counter nor power"):
        AmdSmiMeter(amdsmi=smi)
    smi.amdsmi_shut_down.assert_called_once()


def test_init_failure_is_unavailable_with_reason_through_the_registry():
    error = API.AmdSmiLibraryException(API.amdsmi_wrapper.AMDSMI_STATUS_DRIVER_NOT_LOADED)
    smi = fake_amdsmi([], init_error=error)
    choice = select_meter(MeterRequest("amd", modules={"amdsmi": smi}))
    assert choice.meter is None
    assert [t["method"] for t in choice.tried] == ["amdsmi"]
    assert "amdsmi failed to initialise" in choice.reason
    assert "DRIVER_NOT_LOADED" in choice.reason


def test_select_meter_builds_the_amd_meter_from_the_request():
    gpu = scripted_gpu(uuid="a")
    choice = select_meter(MeterRequest("amd", gpu_uuids=("GPU-A",),
                                       modules={"amdsmi": fake_amdsmi([gpu])}))
    assert isinstance(choice.meter, AmdSmiMeter) and choice.meter.uuids == ["a"]
    assert choice.meter.describe()["devices"][0]["name"] == "AMD Instinct MI300X"
    choice.meter.close()


def test_registry_serves_amd_with_amdsmi_and_not_nvml():
    methods = [s.method for s in specs("amd")]
    assert methods == ["amdsmi"]
    assert "amdsmi" not in [s.method for s in specs("nvidia")]


def test_without_libamd_smi_the_import_is_unavailable_not_a_crash(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_library(name, *args, **kwargs):
        if name == "amdsmi":
            print("Unable to find libamd_smi.so library")
            raise KeyError("libamd_smi.so")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_library)
    with pytest.raises(MeterUnavailable, match="amdsmi is not importable: KeyError.*ROCM_PATH"):
        load_amdsmi()


# -- identity and detection --------------------------------------------------------------------

def test_read_gpus_through_the_fake():
    gpus = read_gpus(fake_amdsmi([
        FakeAmdGpu("u0"),
        FakeAmdGpu("u1", "AMD Instinct MI325X", device_id="0x74a5", bdf="0000:1B:00.0",
                   power_cap_uw=1_000_000_000, vram_bytes=256 * 2**30)]))
    assert [(g.index, g.name, g.uuid, g.pci_device_id, g.pci_bus_id) for g in gpus] == [
        (0, "AMD Instinct MI300X", "u0", 0x74A1, "0000:0c:00.0"),
        (1, "AMD Instinct MI325X", "u1", 0x74A5, "0000:1b:00.0")]
    assert gpus[1].power_limit_w == 1000.0 and gpus[1].memory_gib == 256.0
    assert {g.vendor for g in gpus} == {"amd"} and {g.source for g in gpus} == {"amdsmi"}


def test_amd_vendor_is_registered_and_follows_hip():
    amd = next(v for v in vendors() if v.name == "amd")
    assert amd.read_gpus is read_gpus
    import torch
    assert amd.drives_torch() == (torch.version.hip is not None)


def identity(name, pci=None, memory=192.0, limit=750.0, uuid="u0"):
    return GpuIdentity(0, name, uuid, pci, limit, memory, vendor="amd",
                       pci_bus_id="0000:0c:00.0", source="amdsmi")


@pytest.mark.parametrize("gpu, expected, matched_by", [
    (identity("AMD Instinct MI300X", 0x74A1), "amd-mi300x", "pci_device_id"),
    (identity("AMD Instinct MI300X"), "amd-mi300x", "name"),
    (identity("AMD Instinct MI300X VF", 0x74B5), "amd-mi300x", "pci_device_id"),
    (identity("AMD Instinct MI325X", 0x74A5, 256.0, 1000.0), "amd-mi325x", "pci_device_id"),
    (identity("AMD Instinct MI325X", None, 256.0, 1000.0), "amd-mi325x", "name"),
    # The PCI id outranks a misleading name.
    (identity("AMD Instinct MI300X", 0x74A5, 256.0, 1000.0), "amd-mi325x", "pci_device_id"),
])
def test_detection_of_mi300x_and_mi325x(gpu, expected, matched_by):
    match = match_gpu_info(gpu, load_profiles())
    assert match.profile.id == expected
    assert match.evidence["matched_by"] == matched_by
    assert "inconsistencies" not in match.evidence


def test_mi325x_profile_is_dense_and_sourced():
    p = next(p for p in load_profiles().devices if p.id == "amd-mi325x")
    assert p.peak("bf16") == pytest.approx(1307.4e12)  # dense, not the 2614.9 sparse figure
    assert p.peak("fp8") == pytest.approx(2614.9e12)
    assert p.memory_gib == 256 and p.tdp_w == 1000 and p.memory_bandwidth_gb_per_s == 6000
    assert {"peak_tflops", "memory", "tdp_w"} <= set(p.sources)


@pytest.mark.parametrize("name", ["AMD Instinct MI300A", "AMD Instinct MI308X", "MI300X"])
def test_other_amd_names_get_no_borrowed_profile(name):
    assert match_gpu_info(identity(name), load_profiles()).profile is None


def test_amd_device_context_requests_the_amd_meter():
    ctx = gpu_context(identity("AMD Instinct MI325X", 0x74A5, 256.0, 1000.0, uuid="u7"), 0,
                      load_profiles())
    assert ctx.vendor == "amd" and ctx.profile_id == "amd-mi325x"
    request = ctx.meter_request()
    assert request.kind == "amd" and request.gpu_uuids == ("u7",)
    smi = fake_amdsmi([scripted_gpu(uuid="u7")])
    choice = select_meter(MeterRequest(request.kind, gpu_uuids=request.gpu_uuids,
                                       modules={"amdsmi": smi}))
    assert choice.meter.method == "amdsmi_counter"
    choice.meter.close()
