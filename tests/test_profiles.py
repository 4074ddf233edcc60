"""Profile data validation and device matching, including the substring traps."""

import pytest

from hardware_profiles.cpuinfo import read_cpuinfo
from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu, match_gpu
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


def test_unknown_microarchitecture_falls_back_to_its_isa(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(CPUINFO.replace("model\t\t: 1", "model\t\t: 99"))
    info = read_cpuinfo(tmp_path)
    assert match_cpu(info).profile is None
    peak, how = cpu_peak_flops_per_s(info, None, "fp32")
    assert peak == pytest.approx(2 * 2.45e9 * 32)
    assert "ISA avx2-fma" in how and "assumes two FMA units" in how
    # No bf16 instructions: no bf16 peak, with the reason.
    peak, why = cpu_peak_flops_per_s(info, None, "bf16")
    assert peak is None and "no bf16 FLOPs per cycle" in why


def test_cpu_with_no_known_isa_has_no_peak(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        CPUINFO.replace("model\t\t: 1", "model\t\t: 99").replace("fpu avx2 fma", "fpu sse2"))
    info = read_cpuinfo(tmp_path)
    assert cpu_peak_flops_per_s(info, None, "fp32")[0] is None


def test_amx_gives_the_bf16_peak_on_a_known_microarchitecture(tmp_path):
    (tmp_path / "proc").mkdir()
    text = (CPUINFO.replace("AuthenticAMD", "GenuineIntel").replace("cpu family\t: 25", "cpu family\t: 6")
            .replace("model\t\t: 1", "model\t\t: 143")
            .replace("fpu avx2 fma", "fpu avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile"))
    (tmp_path / "proc/cpuinfo").write_text(text)
    info = read_cpuinfo(tmp_path)
    profile = match_cpu(info).profile
    assert profile.id == "intel-sapphirerapids"
    assert cpu_peak_flops_per_s(info, profile, "fp32")[0] == pytest.approx(2 * 2.45e9 * 64)
    bf16, how = cpu_peak_flops_per_s(info, profile, "bf16")
    assert bf16 == pytest.approx(2 * 2.45e9 * 1024) and "amx-bf16" in how


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
    (GOOD.replace("bf16 = 100", "bf16 = \"100 TFLOPS\""), "must be a number in TFLOP/s"),
    (GOOD.replace("bf16 = 100", "bf16 = 989.5e12"), "wrong unit"),
    (GOOD.replace('names = ["X"]', 'names = ["X"]\ntdp_w = 300'), "sources.tdp_w is missing"),
    (GOOD + "\n[[gpu]]\nid = 'y'\n", "unknown top-level key"),
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


# (name, PCI device id, power limit W, memory GiB) -> profile id or None.
DETECTION_CASES = [
    ("NVIDIA H100 80GB HBM3", 0x2330, 700, 79.6, "nvidia-h100-sxm"),
    ("NVIDIA H100 PCIe", 0x2331, 350, 79.6, "nvidia-h100-pcie"),
    ("NVIDIA H100 NVL", 0x2321, 400, 93.6, "nvidia-h100-nvl"),
    ("NVIDIA H200", 0x2335, 700, 139.8, "nvidia-h200-sxm"),
    ("NVIDIA H200 NVL", 0x233B, 600, 139.8, "nvidia-h200-nvl"),
    ("NVIDIA L4", 0x27B8, 72, 22.5, "nvidia-l4"),
    ("NVIDIA L40S", 0x26B9, 350, 44.5, "nvidia-l40s"),
    ("NVIDIA L40", 0x26B5, 300, 44.5, None),  # no L40 profile: must not become L4 or L40S
    ("NVIDIA GB300", 0x31C2, 1400, 279.0, None),  # must not become B300 or B200
    ("NVIDIA B200", 0x2901, 1000, 179.0, "nvidia-b200"),
    ("NVIDIA A100-SXM4-80GB", 0x20B2, 400, 79.2, "nvidia-a100-sxm-80gb"),
    ("NVIDIA A100 80GB PCIe", 0x20B5, 300, 79.2, "nvidia-a100-pcie-80gb"),
    ("NVIDIA RTX PRO 6000", 0x2BB1, 600, 95.0, None),
]


@pytest.mark.parametrize("name, pci, limit_w, mem_gib, expected", DETECTION_CASES)
def test_detection_table(name, pci, limit_w, mem_gib, expected):
    from hardware_profiles.detect import match_gpu_info
    from hardware_profiles.identity import GpuIdentity as GpuInfo

    m = match_gpu_info(GpuInfo(0, name, "u", pci, limit_w, mem_gib))
    assert (m.profile.id if m.profile else None) == expected
    assert m.evidence["power_limit_w"] == limit_w and m.evidence["memory_gib"] == mem_gib
    if expected is None:
        assert m.reason.startswith(f"no profile for {name}")
    else:
        assert "inconsistencies" not in m.evidence


def test_inconsistent_evidence_is_recorded():
    from hardware_profiles.detect import match_gpu_info
    from hardware_profiles.identity import GpuIdentity as GpuInfo

    m = match_gpu_info(GpuInfo(0, "NVIDIA H100 PCIe", "u", 0x2331, 700, 94.0))
    assert m.profile.id == "nvidia-h100-pcie"
    assert len(m.evidence["inconsistencies"]) == 2


def test_read_gpus_through_a_fake_nvml():
    from types import SimpleNamespace

    from hardware_profiles.vendors.nvidia import read_gpus
    from tests.fakes import FakeGpu, fake_nvml

    nv = fake_nvml([FakeGpu("a", "NVIDIA H200")])
    nv.nvmlDeviceGetPciInfo.side_effect = lambda h: SimpleNamespace(pciDeviceId=0x233510DE)
    nv.nvmlDeviceGetPowerManagementLimit.side_effect = lambda h: 700_000
    nv.nvmlDeviceGetMemoryInfo.side_effect = lambda h: SimpleNamespace(total=150_000_000_000)
    (gpu,) = read_gpus(nv)
    assert (gpu.name, gpu.pci_device_id, gpu.power_limit_w) == ("NVIDIA H200", 0x2335, 700.0)
    assert gpu.memory_gib == pytest.approx(139.7, abs=0.1)


def test_user_profile_directory_and_file(tmp_path, monkeypatch):
    from hardware_profiles.detect import find_device_profile
    from hardware_profiles.profiles import load_profiles

    user_dir = tmp_path / "profiles"
    user_dir.mkdir()
    (user_dir / "mine.toml").write_text(GOOD.replace('"X"', '"My Accelerator"'))
    monkeypatch.setenv("ETAMETER_PROFILES", str(user_dir))
    profiles = load_profiles()
    assert match_gpu("My Accelerator", None, profiles).profile.peak("bf16") == 100e12
    assert find_device_profile("my accelerator", profiles).id == "x"
    # A file given explicitly overrides a built-in profile of the same name.
    override = tmp_path / "h100.toml"
    override.write_text(GOOD.replace('"X"', '"NVIDIA H100 80GB HBM3"').replace('"x"', '"h100-custom"'))
    profiles = load_profiles([override])
    assert match_gpu("NVIDIA H100 80GB HBM3", None, profiles).profile.id == "h100-custom"
    assert "nvidia-h100-sxm" not in {p.id for p in profiles.devices}


def test_a_bad_user_profile_is_a_clear_error(tmp_path, monkeypatch):
    from hardware_profiles.profiles import load_profiles

    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("bf16 = 100", "bf16 = -5"))
    with pytest.raises(ProfileError, match="bad.toml.*must not be negative"):
        load_profiles([bad])
    with pytest.raises(ProfileError, match="cannot read profile file"):
        load_profiles([tmp_path / "missing.toml"])
