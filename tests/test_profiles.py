"""Profile data validation and device matching, including the substring traps."""

import pytest

from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu, match_gpu, read_cpuinfo
from hardware_profiles.profiles import builtin_profiles, parse_profile_text
from profiler.errors import ProfileError


def test_builtin_profiles_load_and_cover_the_peaks_table():
    ids = {p.id for p in builtin_profiles().devices}
    assert {"nvidia-h100-sxm", "nvidia-h100-pcie", "nvidia-h100-nvl", "nvidia-h200-sxm",
            "nvidia-h200-nvl", "nvidia-a100-sxm-80gb", "nvidia-l4", "nvidia-l40s",
            "nvidia-b200", "amd-mi300x"} <= ids
    h100 = match_gpu("NVIDIA H100 80GB HBM3").profile
    assert h100.peak("bf16") == 989.5e12  # dense, not the 1979 sparse figure


@pytest.mark.parametrize("name, pci, expected", [
    ("NVIDIA H100 80GB HBM3", 0x2330, "nvidia-h100-sxm"),
    ("NVIDIA H100 PCIe", 0x2331, "nvidia-h100-pcie"),
    ("NVIDIA H100 NVL", 0x2321, "nvidia-h100-nvl"),
    ("NVIDIA H200", 0x2335, "nvidia-h200-sxm"),
    ("NVIDIA H200 NVL", 0x233B, "nvidia-h200-nvl"),
    ("NVIDIA L4", None, "nvidia-l4"),
    ("NVIDIA L40S", None, "nvidia-l40s"),
    ("nvidia  l40s", None, "nvidia-l40s"),
])
def test_gpu_matches(name, pci, expected):
    assert match_gpu(name, pci).profile.id == expected


@pytest.mark.parametrize("name", ["NVIDIA L40", "NVIDIA GB300", "NVIDIA B300", "NVIDIA H100",
                                  "Some Future GPU"])
def test_no_substring_match_and_no_borrowed_peak(name):
    m = match_gpu(name)
    assert m.profile is None
    assert m.reason.startswith(f"no profile for {name}")
    assert "--profile" in m.reason and "etameter calibrate" in m.reason


def test_pci_id_outranks_the_name():
    m = match_gpu("NVIDIA H100 80GB HBM3", 0x2331)
    assert m.profile.id == "nvidia-h100-pcie"
    assert m.evidence["matched_by"] == "pci_device_id"


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
cpu MHz\t\t: 2450.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu avx2 fma

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
cpu MHz\t\t: 2450.000
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu avx2 fma
"""


def test_cpuinfo_from_a_fake_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(CPUINFO)
    info = read_cpuinfo(tmp_path)
    assert (info.vendor_id, info.cpu_family, info.model) == ("AuthenticAMD", 25, 1)
    assert info.physical_cores == 2 and "avx2" in info.flags
    m = match_cpu(info)
    assert m.profile.id == "amd-zen3-milan"
    peak, how = cpu_peak_flops_per_s(info, m.profile, "fp32")
    assert peak == pytest.approx(2 * 2.45e9 * 32)
    assert "cpu MHz" in how


def test_cpufreq_max_outranks_cpuinfo_mhz(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(CPUINFO)
    freq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
    freq.mkdir(parents=True)
    (freq / "cpuinfo_max_freq").write_text("3500000\n")
    info = read_cpuinfo(tmp_path)
    assert info.frequency_hz == 3.5e9 and info.frequency_source == "cpufreq cpuinfo_max_freq"


def test_unknown_cpu_has_no_peak(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(CPUINFO.replace("model\t\t: 1", "model\t\t: 99"))
    info = read_cpuinfo(tmp_path)
    m = match_cpu(info)
    assert m.profile is None
    assert cpu_peak_flops_per_s(info, None, "fp32")[0] is None


GOOD = """schema = 1
[[device]]
id = "x"
display_name = "X"
vendor = "nvidia"
names = ["X"]
peak_tflops = { bf16 = 100 }
sources = { peak_tflops = "datasheet" }
"""


@pytest.mark.parametrize("text, message", [
    (GOOD.replace('id = "x"\n', ""), "missing field 'id'"),
    (GOOD.replace("bf16 = 100", "bf16 = -1"), "must not be negative"),
    (GOOD.replace("bf16 = 100", "bf16 = \"100 TFLOPS\""), "must be a number"),
    (GOOD.replace("bf16 = 100", "bfloat16 = 100"), "unknown precision"),
    (GOOD.replace('peak_tflops = "datasheet"', 'other = "x"'), "every figure needs a source"),
    (GOOD.replace("schema = 1", "schema = 9"), "schema = 1"),
    ("not toml [", "not valid TOML"),
])
def test_profile_validation_errors(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile_text(text, "user.toml")


def test_valid_user_profile_parses():
    parsed = parse_profile_text(GOOD, "user.toml")
    assert parsed.devices[0].peak("bf16") == 100e12
