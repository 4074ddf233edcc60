"""Faults against the host's facts (issue 22, item 4): a clock, a core count or a file that
cannot be true is ignored with a note; the peak then comes from the next source or is null
with the reason, never "-2.445 GHz". RAPL names that are folders or not text are passed over."""

import math

import pytest

from hardware_profiles.cpuinfo import MAX_CPUS, read_cpuinfo
from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu
from hardware_profiles.device import cpu_context
from hardware_profiles.profiles import load_profiles
from profiler.errors import MeterUnavailable
from profiler.meters.rapl import discover_zones
from tests.hosts import HOSTS

ZEN3 = HOSTS["zen3"]


def host(tmp_path, cores=2, max_khz=None, raw: bytes | None = None, **fields):
    """A fake host root: /proc/cpuinfo of the zen3 host with ``fields`` changed."""
    values = {**ZEN3, **fields}
    blocks = ["\n".join([f"processor\t: {i}", *(f"{k}\t: {v}" for k, v in values.items()),
                         "physical id\t: 0", f"core id\t: {i}"]) for i in range(cores)]
    (tmp_path / "proc").mkdir(parents=True, exist_ok=True)
    text = ("\n\n".join(blocks) + "\n").encode()
    (tmp_path / "proc/cpuinfo").write_bytes(raw + text if raw else text)
    if max_khz is not None:
        freq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
    return tmp_path


def peak(info):
    return cpu_peak_flops_per_s(info, match_cpu(info).profile, "fp32")


@pytest.mark.parametrize("mhz", ["-2445.000", "0", "1e30", "nan", "inf", "fast"])
def test_an_impossible_cpu_mhz_is_ignored_with_a_note(tmp_path, mhz):
    info = read_cpuinfo(host(tmp_path, **{"cpu MHz": mhz}))
    assert info.frequency_hz is None and info.notes and "ignored" in info.notes[0]
    value, why = peak(info)
    assert value is None and "frequency is unknown" in why and "ignored" in why
    assert "-2.445" not in why and "GHz" not in why


def test_a_negative_cpufreq_maximum_falls_back_to_cpu_mhz(tmp_path):
    info = read_cpuinfo(host(tmp_path, max_khz=-2_445_000))
    assert info.frequency_hz == pytest.approx(2.445e9)
    assert info.frequency_source.startswith("/proc/cpuinfo 'cpu MHz'")
    assert "cpufreq cpuinfo_max_freq gave -2445 MHz" in info.notes[0]
    value, how = peak(info)
    assert value > 0 and "2.445 GHz" in how and "ignored as impossible" in how


def test_an_impossible_cpufreq_maximum_and_cpu_mhz_leave_the_peak_null(tmp_path):
    info = read_cpuinfo(host(tmp_path, max_khz=10**12, **{"cpu MHz": "nan"}))
    assert info.frequency_hz is None and len(info.notes) == 2
    assert peak(info)[0] is None


def test_more_cores_than_linux_can_address_are_ignored(tmp_path):
    info = read_cpuinfo(host(tmp_path, cores=MAX_CPUS + 1))
    assert info.physical_cores is None and f"more than Linux can address ({MAX_CPUS})" in info.notes[0]
    value, why = peak(info)
    assert value is None and "core count is unknown" in why
    power, why = cpu_context(load_profiles(), info).cpu_power()
    assert power is None and "--cpu-tdp-w" in why


@pytest.mark.slow  # 3 s to write and parse; the case above covers the same bound
def test_a_hundred_thousand_cores_is_not_a_cpu(tmp_path):
    info = read_cpuinfo(host(tmp_path, cores=100_000))
    assert info.physical_cores is None and peak(info)[0] is None


def test_a_cpuinfo_that_is_not_utf8_is_read_with_a_note(tmp_path):
    info = read_cpuinfo(host(tmp_path, raw=b"junk\t: \xff\xfe\x80\n\n"))
    assert info.model_name == ZEN3["model name"]
    assert any("not UTF-8" in n for n in info.notes)


def test_a_plausible_host_has_no_notes(tmp_path):
    info = read_cpuinfo(host(tmp_path, max_khz=3_500_000))
    assert info.notes == () and info.frequency_hz == 3.5e9 and math.isfinite(peak(info)[0])


def rapl_zone(root, zone_id, name: bytes | None, folder_name=False):
    d = root / "sys/class/powercap" / zone_id
    d.mkdir(parents=True)
    if folder_name:
        (d / "name").mkdir()
    else:
        (d / "name").write_bytes(name)
    (d / "energy_uj").write_text("100\n")
    (d / "max_energy_range_uj").write_text("262143328850\n")
    return d


def test_a_rapl_name_that_is_not_text_or_is_a_folder_is_passed_over(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", b"package-\xff\xfe\n")
    rapl_zone(tmp_path, "intel-rapl:1", None, folder_name=True)
    with pytest.raises(MeterUnavailable) as e:
        discover_zones(tmp_path)
    assert "not UTF-8 text" in str(e.value) and "is a folder" in str(e.value)


def test_a_good_zone_beside_a_broken_one_is_used(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", b"package-0\n")
    rapl_zone(tmp_path, "intel-rapl:1", b"\xff\n")
    assert [z.label for z in discover_zones(tmp_path)] == ["cpu:package-0"]


def test_a_dram_zone_whose_parent_name_is_a_folder_keeps_a_label(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", None, folder_name=True)
    rapl_zone(tmp_path, "intel-rapl:0:0", b"dram\n")
    zones = discover_zones(tmp_path)
    assert [z.label for z in zones] == ["cpu:intel-rapl:0:0:dram"]
