"""RAPL over fake powercap trees built under a temporary root."""

from pathlib import Path

import pytest

from profiler.errors import MeterUnavailable
from profiler.meters import rapl
from profiler.meters.rapl import RaplMeter, discover_zones
from tests.fakes import FakeClock

BIG = 262_143_328_850


def zone(root: Path, zone_id: str, name: str, energy_uj: int, max_uj: int | None = BIG) -> Path:
    d = root / "sys/class/powercap" / zone_id
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(d: Path, value: int) -> None:
    (d / "energy_uj").write_text(f"{value}\n")


def meter_for(root, clock=None) -> RaplMeter:
    # A huge interval: the background thread never ticks, the test polls by hand.
    return RaplMeter(root=root, interval_s=1e6, clock=clock or FakeClock())


def test_double_wraparound_in_one_window(tmp_path):
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=1000)
    clock = FakeClock()
    meter = meter_for(tmp_path, clock)
    meter.start()  # reads 900
    for t, value in ((1, 100), (2, 700), (3, 300)):  # wrap, +600, wrap
        clock.now = t
        set_energy(pkg, value)
        meter.poll()
    clock.now = 4
    set_energy(pkg, 500)
    reading = meter.stop(4.0)  # final poll reads 500
    dev = reading.devices[0]
    assert dev.detail["wraps"] == 2
    assert dev.energy_j == pytest.approx((200 + 600 + 600 + 200) / 1e6)
    assert dev.method == "rapl" and dev.scope == "cpu_package"
    assert dev.peak_power_w == pytest.approx(600 / 1e6)


def test_nested_zones_are_not_double_counted(tmp_path):
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    core = zone(tmp_path, "intel-rapl:0:0", "core", 0)
    dram = zone(tmp_path, "intel-rapl:0:1", "dram", 0)
    psys = zone(tmp_path, "intel-rapl:1", "psys", 0)
    (tmp_path / "sys/class/powercap/intel-rapl").mkdir()  # the control type, no counter
    meter = meter_for(tmp_path)
    assert sorted(z.label for z in meter.zones) == ["cpu:package-0", "cpu:package-0:dram"]
    meter.start()
    set_energy(pkg, 3_000_000)
    set_energy(core, 1_500_000)
    set_energy(dram, 500_000)
    set_energy(psys, 9_000_000)
    reading = meter.stop(2.0)
    assert reading.energy_j == pytest.approx(2.5)
    assert reading.scope == "cpu_package+dram"
    assert reading.avg_power_w == pytest.approx(1.25)


def test_psys_alone_is_used_when_there_is_no_package(tmp_path):
    zone(tmp_path, "intel-rapl:0", "psys", 0)
    assert [z.scope for z in discover_zones(tmp_path)] == ["psys"]


def test_unreadable_counter_says_how_to_grant_access(tmp_path, monkeypatch):
    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    real = rapl._read_int

    def root_only(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(rapl, "_read_int", root_only)
    with pytest.raises(MeterUnavailable, match="root only since Linux 5.10") as info:
        discover_zones(tmp_path)
    assert "chmod" in str(info.value)


def test_missing_max_file_is_unavailable(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 5, max_uj=None)
    with pytest.raises(MeterUnavailable, match="max_energy_range_uj is missing"):
        discover_zones(tmp_path)


def test_no_powercap_at_all(tmp_path):
    with pytest.raises(MeterUnavailable, match="no RAPL"):
        discover_zones(tmp_path)


def test_select_prefers_rapl_over_the_estimate(tmp_path):
    from profiler.meters.registry import MeterRequest
    from profiler.meters.select import select_meter

    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    choice = select_meter(MeterRequest("cpu", sysfs_root=str(tmp_path)))
    assert choice.meter.method == "rapl"
    choice.meter.close()
