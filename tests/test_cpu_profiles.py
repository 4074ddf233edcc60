"""Built-in CPU profiles: detection (x86 family/model ranges, Arm implementer/part, Apple
sysctl), per-precision FLOPs per cycle, labelled peaks, and validation. Every cpuinfo here is a
fake tree under tmp_path: nothing depends on the machine the tests run on."""

import pytest

from hardware_profiles.cpuinfo import CpuInfo, read_cpuinfo
from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu
from hardware_profiles.profiles import PRECISIONS, builtin_profiles, parse_profile_text
from profiler.errors import ProfileError

AVX512_FLAGS = ("fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16 "
                "avx512_vnni avx_vnni")


def x86_cpuinfo(vendor: str, family: int, model: int, name: str, flags: str,
                mhz: float = 2596.098, cores: int = 2, hypervisor: bool = False) -> str:
    if hypervisor:
        flags += " hypervisor"
    blocks = []
    for core in range(cores):
        blocks.append(f"processor\t: {core}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
                      f"model\t\t: {model}\nmodel name\t: {name}\nstepping\t: 1\n"
                      f"cpu MHz\t\t: {mhz}\nphysical id\t: 0\ncore id\t\t: {core}\n"
                      f"flags\t\t: {flags}\n")
    return "\n".join(blocks)


def arm_cpuinfo(part: int, features: str, cores: int = 4, implementer: int = 0x41) -> str:
    blocks = []
    for core in range(cores):
        blocks.append(f"processor\t: {core}\nBogoMIPS\t: 2100.00\nFeatures\t: {features}\n"
                      f"CPU implementer\t: 0x{implementer:02x}\nCPU architecture: 8\n"
                      f"CPU variant\t: 0x1\nCPU part\t: 0x{part:03x}\nCPU revision\t: 1\n")
    return "\n".join(blocks)


def fake_root(tmp_path, text: str, max_khz: int | None = None):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(text)
    if max_khz is not None:
        freq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
    return tmp_path


def detect(tmp_path, text: str, max_khz: int | None = None):
    info = read_cpuinfo(fake_root(tmp_path, text, max_khz))
    return info, match_cpu(info).profile


# ------------------------------------------------------------------------------------- AMD

def test_kvm_guest_amd_epyc_family_26_model_2_is_zen5_turin(tmp_path):
    """The hard case: a KVM guest naming itself just "AMD EPYC", no cpufreq."""
    info, profile = detect(tmp_path, x86_cpuinfo("AuthenticAMD", 26, 2, "AMD EPYC",
                                                 AVX512_FLAGS, hypervisor=True))
    assert info.hypervisor and info.frequency_source.startswith("/proc/cpuinfo 'cpu MHz'")
    assert profile.id == "amd-zen5-turin"
    assert profile.flops_per_cycle["fp32"] == 64
    assert match_cpu(info).evidence["matched_by"] == "vendor_id+cpu_family+model"
    peak, how = cpu_peak_flops_per_s(info, profile, "fp32")
    assert peak == pytest.approx(2 * 2.596098e9 * 64)
    assert how.startswith("2 cores x") and "cpu MHz" in how
    assert "nominal clock under a hypervisor" in how
    assert "vendor" not in how.lower()
    bf16, how = cpu_peak_flops_per_s(info, profile, "bf16")
    assert bf16 == pytest.approx(2 * 2.596098e9 * 128) and "avx512-bf16" in how
    int8, how = cpu_peak_flops_per_s(info, profile, "int8")
    assert int8 == pytest.approx(2 * 2.596098e9 * 256) and "OPs/cycle" in how


def test_zen4_genoa_runs_avx512_at_256_bit_width(tmp_path):
    info, profile = detect(tmp_path, x86_cpuinfo("AuthenticAMD", 25, 0x11,
                                                 "AMD EPYC 9654 96-Core Processor", AVX512_FLAGS))
    assert profile.id == "amd-zen4-genoa"
    fpc = profile.flops_per_cycle
    assert (fpc["fp32"], fpc["bf16"], fpc["int8"]) == (32, 64, 128)
    peak, how = cpu_peak_flops_per_s(info, profile, "fp32")
    assert peak == pytest.approx(2 * 2.596098e9 * 32)
    # Bare metal without cpufreq: 'cpu MHz' is named, but no hypervisor is claimed.
    assert "cpu MHz" in how and "hypervisor" not in how


def test_ryzen_9000_granite_ridge_is_full_width_zen5(tmp_path):
    info, profile = detect(tmp_path, x86_cpuinfo("AuthenticAMD", 26, 0x44,
                                                 "AMD Ryzen 9 9950X 16-Core Processor",
                                                 AVX512_FLAGS), max_khz=5_752_000)
    assert profile.id == "amd-zen5-client"
    assert profile.flops_per_cycle["fp32"] == 64
    assert profile.reference_sku["name"] == "Ryzen 9 9950X"
    peak, how = cpu_peak_flops_per_s(info, profile, "fp32")
    assert peak == pytest.approx(2 * 5.752e9 * 64)
    assert "cpufreq" in how and "hypervisor" not in how and "ISA assumption" not in how


def test_strix_point_zen5_mobile_is_256_bit(tmp_path):
    _, profile = detect(tmp_path, x86_cpuinfo("AuthenticAMD", 26, 0x24,
                                              "AMD Ryzen AI 9 HX 370", AVX512_FLAGS))
    assert profile.id == "amd-zen5-mobile" and profile.flops_per_cycle["fp32"] == 32


@pytest.mark.parametrize("family, model, expected", [
    (23, 0x31, "amd-zen2-rome"), (23, 0x71, "amd-zen2-client"), (23, 0x60, "amd-zen2-client"),
    (25, 0x00, "amd-zen3-milan"), (25, 0x01, "amd-zen3-milan"), (25, 0x0F, "amd-zen3-milan"),
    (25, 0x21, "amd-zen3-client"), (25, 0x50, "amd-zen3-client"),
    (25, 0x10, "amd-zen4-genoa"), (25, 0x1F, "amd-zen4-genoa"), (25, 0xA0, "amd-zen4-genoa"),
    (25, 0x61, "amd-zen4-client"), (25, 0x74, "amd-zen4-client"), (25, 0x63, None),
    (26, 0x00, "amd-zen5-turin"), (26, 0x0F, "amd-zen5-turin"), (26, 0x11, "amd-zen5c-turin-dense"),
    (26, 0x40, "amd-zen5-client"), (26, 0x70, "amd-zen5-client"), (26, 0x60, "amd-zen5-mobile"),
    # Just outside every range: nothing, not a neighbour's profile.
    (25, 0x30, None), (26, 0x50, None), (23, 0x01, None), (24, 0x00, None),
])
def test_amd_model_ranges_are_inclusive_and_exact(family, model, expected):
    info = CpuInfo("AuthenticAMD", family, model, "AMD EPYC", frozenset(), 4, 4, None, None)
    m = match_cpu(info)
    assert (m.profile.id if m.profile else None) == expected


# ----------------------------------------------------------------------------------- Intel

def test_sapphire_rapids_with_amx_flags(tmp_path):
    flags = AVX512_FLAGS + " amx_bf16 amx_tile amx_int8"
    info, profile = detect(tmp_path, x86_cpuinfo("GenuineIntel", 6, 143,
                                                 "Intel(R) Xeon(R) Platinum 8480+", flags),
                           max_khz=3_800_000)
    assert profile.id == "intel-sapphirerapids"
    bf16, how = cpu_peak_flops_per_s(info, profile, "bf16")
    assert bf16 == pytest.approx(2 * 3.8e9 * 1024) and "amx-bf16" in how
    int8, how = cpu_peak_flops_per_s(info, profile, "int8")
    assert int8 == pytest.approx(2 * 3.8e9 * 2048) and "amx-int8" in how
    assert cpu_peak_flops_per_s(info, profile, "fp32")[0] == pytest.approx(2 * 3.8e9 * 64)


def test_sapphire_rapids_vm_that_hides_amx_falls_back_to_avx512_bf16(tmp_path):
    info, profile = detect(tmp_path, x86_cpuinfo("GenuineIntel", 6, 143, "Intel Xeon Processor",
                                                 AVX512_FLAGS, hypervisor=True))
    assert profile.id == "intel-sapphirerapids"
    bf16, how = cpu_peak_flops_per_s(info, profile, "bf16")
    assert bf16 == pytest.approx(2 * 2.596098e9 * 128)
    assert "ISA avx512-bf16" in how and "amx_bf16" in how  # says why AMX did not count
    assert "nominal clock under a hypervisor" in how


def test_skylake_sp_without_vnni_gets_no_int8_peak_but_cascade_lake_does(tmp_path):
    skx = CpuInfo("GenuineIntel", 6, 85, "Intel Xeon Gold 6154", frozenset({"avx512f"}),
                  4, 4, 3.0e9, "cpufreq cpuinfo_max_freq")
    profile = match_cpu(skx).profile
    assert profile.id == "intel-cascadelake-sp"
    peak, why = cpu_peak_flops_per_s(skx, profile, "int8")
    assert peak is None and "avx512_vnni" in why
    clx = CpuInfo("GenuineIntel", 6, 85, "Intel Xeon Platinum 8280",
                  frozenset({"avx512f", "avx512_vnni"}), 4, 4, 3.0e9, "cpufreq cpuinfo_max_freq")
    assert cpu_peak_flops_per_s(clx, profile, "int8")[0] == pytest.approx(4 * 3e9 * 256)


def test_granite_rapids():
    info = CpuInfo("GenuineIntel", 6, 173, "Intel Xeon 6980P",
                   frozenset({"avx512f", "amx_bf16", "amx_tile", "amx_int8", "amx_fp16"}),
                   8, 8, 2.0e9, "cpufreq cpuinfo_max_freq")
    profile = match_cpu(info).profile
    assert profile.id == "intel-graniterapids"
    assert cpu_peak_flops_per_s(info, profile, "fp16")[0] == pytest.approx(8 * 2e9 * 1024)


# ------------------------------------------------------------------------------------- Arm

GRAVITON3_FEATURES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                      "asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm "
                      "dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 "
                      "dgh rng")


def test_graviton3_neoverse_v1(tmp_path):
    info, profile = detect(tmp_path, arm_cpuinfo(0xd40, GRAVITON3_FEATURES), max_khz=2_600_000)
    assert (info.cpu_implementer, info.cpu_part) == (0x41, 0xd40)
    assert "sve" in info.flags and "bf16" in info.flags and info.physical_cores == 4
    assert profile.id == "arm-neoverse-v1"
    assert match_cpu(info).evidence["matched_by"] == "cpu_implementer+cpu_part"
    assert match_cpu(info).evidence["cpu_part"] == "0xd40"
    assert cpu_peak_flops_per_s(info, profile, "fp32")[0] == pytest.approx(4 * 2.6e9 * 32)
    assert cpu_peak_flops_per_s(info, profile, "bf16")[0] == pytest.approx(4 * 2.6e9 * 128)


def test_grace_neoverse_v2(tmp_path):
    info, profile = detect(tmp_path, arm_cpuinfo(0xd4f, GRAVITON3_FEATURES + " sve2 svebitperm",
                                                 cores=72), max_khz=3_447_000)
    assert profile.id == "arm-neoverse-v2" and profile.flops_per_cycle["fp32"] == 32
    assert profile.reference_sku["cores"] == 144
    int8, how = cpu_peak_flops_per_s(info, profile, "int8")
    assert int8 == pytest.approx(72 * 3.447e9 * 256) and "arm-i8mm" in how


def test_graviton2_neoverse_n1_has_no_bf16(tmp_path):
    info, profile = detect(tmp_path, arm_cpuinfo(0xd0c, "fp asimd aes pmull crc32 atomics "
                                                 "asimdrdm lrcpc dcpop asimddp ssbs"))
    assert profile.id == "arm-neoverse-n1"
    assert "bf16" not in profile.precisions
    peak, why = cpu_peak_flops_per_s(info, profile, "bf16")
    assert peak is None and "no bf16 FLOPs per cycle" in why
    # No cpufreq and no 'cpu MHz' (as on Graviton): no peak, and it says why.
    peak, why = cpu_peak_flops_per_s(info, profile, "fp32")
    assert peak is None and "frequency is not exposed" in why


def test_unknown_arm_part_matches_nothing_and_its_isa_peak_is_labelled(tmp_path):
    info, profile = detect(tmp_path, arm_cpuinfo(0xd8e, "fp asimd asimddp"), max_khz=3_000_000)
    m = match_cpu(info)
    assert profile is None and "part 0xd8e" in m.reason
    peak, how = cpu_peak_flops_per_s(info, None, "fp32")
    assert peak == pytest.approx(4 * 3e9 * 16)
    assert "ISA assumption" in how and "assumes two FMA units" in how
    assert "vendor" not in how.lower()


# ----------------------------------------------------------------------------------- Apple

def fake_sysctl(values: dict):
    calls = []

    def run(name: str):
        calls.append(name)
        return values.get(name)

    run.calls = calls
    return run


M2_PRO = {"machdep.cpu.brand_string": "Apple M2 Pro", "hw.physicalcpu": "12",
          "hw.logicalcpu": "12", "hw.perflevel0.physicalcpu": "8",
          "hw.optional.arm.FEAT_BF16": "1", "hw.optional.arm.FEAT_DotProd": "1",
          "hw.optional.arm.FEAT_I8MM": "1"}


def test_apple_m2_through_a_fake_sysctl(tmp_path):
    run = fake_sysctl(M2_PRO)
    info = read_cpuinfo(tmp_path, sysctl=run)  # no proc/cpuinfo under tmp_path
    assert "machdep.cpu.brand_string" in run.calls
    assert (info.source, info.model_name) == ("sysctl", "Apple M2 Pro")
    assert (info.physical_cores, info.performance_cores) == (12, 8)
    assert {"bf16", "i8mm", "asimddp"} <= info.flags
    m = match_cpu(info)
    assert m.profile.id == "apple-m2" and m.evidence["matched_by"] == "brand_string"
    peak, how = cpu_peak_flops_per_s(info, m.profile, "fp32")
    assert peak == pytest.approx(8 * 3.49e9 * 32)
    assert "8 performance cores" in how and "nominal clock from the profile" in how


def test_apple_brand_prefix_is_whole_word():
    profiles = builtin_profiles()

    def apple(brand):
        return CpuInfo(None, None, None, brand, frozenset(), 8, 8, None, None, source="sysctl")

    assert match_cpu(apple("Apple M1"), profiles).profile.id == "apple-m1"
    assert match_cpu(apple("Apple M4 Max"), profiles).profile.id == "apple-m4"
    assert match_cpu(apple("Apple M10"), profiles).profile is None
    assert match_cpu(apple("Apple A18 Pro"), profiles).profile is None


def test_apple_m1_has_no_bf16():
    info = CpuInfo(None, None, None, "Apple M1", frozenset({"asimddp"}), 8, 8, None, None,
                   performance_cores=4, source="sysctl")
    profile = match_cpu(info).profile
    assert profile.id == "apple-m1"
    assert cpu_peak_flops_per_s(info, profile, "bf16")[0] is None


def test_no_sysctl_and_no_cpuinfo_is_an_unknown_cpu(tmp_path):
    info = read_cpuinfo(tmp_path, sysctl=fake_sysctl({}))
    assert info.model_name == "unknown CPU" and match_cpu(info).profile is None


# --------------------------------------------------------------------------- no borrowing

@pytest.mark.parametrize("vendor, family, model", [
    ("GenuineIntel", 6, 999), ("HygonGenuine", 24, 0), ("CentaurHauls", 7, 91),
    ("AuthenticAMD", 27, 0), ("AuthenticAMD", None, None), (None, None, None)])
def test_unknown_vendor_or_family_matches_nothing(vendor, family, model):
    info = CpuInfo(vendor, family, model, "Imaginary CPU", frozenset(), 4, 4, 3e9, "cpufreq")
    m = match_cpu(info)
    assert m.profile is None and m.reason.startswith("no profile for CPU Imaginary CPU")
    assert cpu_peak_flops_per_s(info, None, "fp32")[0] is None  # no flags: no borrowed peak


def test_cpuinfo_positional_fields_still_construct_and_round_trip():
    info = CpuInfo("GenuineIntel", 6, 999, "Imaginary CPU", frozenset(), 4, 4, None, None)
    assert info.cpu_implementer is None and info.hypervisor is False
    assert CpuInfo(**{**info.__dict__}) == info


# ---------------------------------------------------------------------------- validation

CPU = """schema = 1
[[cpu]]
id = "c"
display_name = "C"
vendor_id = "AuthenticAMD"
cpu_family = 26
models = [1, [16, 31]]
flops_per_cycle = { fp32 = 64 }
reference_sku = { name = "X", cores = 8, tdp_w = 80 }
sources = { flops_per_cycle = "guide", reference_sku = "page" }
"""

ARM = """schema = 1
[[cpu]]
id = "a"
display_name = "A"
cpu_implementer = 0x41
cpu_parts = ["0xd40", 0xd4f]
flops_per_cycle = { fp32 = 32 }
reference_sku = { name = "X", cores = 8, tdp_w = 80 }
sources = { flops_per_cycle = "guide", reference_sku = "page" }
"""


def test_model_numbers_and_ranges_parse():
    (cpu,) = parse_profile_text(CPU, "user.toml").cpus
    assert cpu.models == (1,) and cpu.model_ranges == ((16, 31),)
    assert all(cpu.matches_model(m) for m in (1, 16, 20, 31))
    assert not any(cpu.matches_model(m) for m in (0, 2, 15, 32, None))
    (arm,) = parse_profile_text(ARM, "user.toml").cpus
    assert arm.cpu_implementer == 0x41 and arm.cpu_parts == (0xd40, 0xd4f)
    both = parse_profile_text(CPU.replace("models = [1, [16, 31]]",
                                          "models = [1]\nmodel_ranges = [[16, 31]]"), "u.toml")
    assert both.cpus[0].model_ranges == ((16, 31),)


@pytest.mark.parametrize("text, message", [
    (CPU.replace("[16, 31]", "[31, 16]"), r"field 'models' range \[31, 16\] is reversed"),
    (CPU.replace("[16, 31]", "[16, 31, 40]"), r"field 'models' entry .* inclusive \[first, last\]"),
    (CPU.replace("[16, 31]", '"0x10"'), "field 'models' entry '0x10'"),
    (CPU.replace("[16, 31]", "-3"), "field 'models' entry -3 is negative"),
    (CPU.replace("models = [1, [16, 31]]", "models = []"), "field 'models' is empty"),
    (CPU.replace("models = [1, [16, 31]]", "models = [1]\nmodel_ranges = [[9, 2]]"),
     "field 'model_ranges' range"),
    (CPU.replace('vendor_id = "AuthenticAMD"\n', ""), "missing field 'vendor_id'"),
    (CPU.replace('reference_sku = "page"', 'other = "x"'), "sources.reference_sku is missing"),
    (CPU.replace('flops_per_cycle = "guide", ', ""), "sources.flops_per_cycle is missing"),
    (CPU.replace("fp32 = 64 }", "fp32 = 64 }\nrequires = { bf16 = 'avx512-bf16' }"),
     "requires.bf16 names a precision"),
    (CPU.replace("fp32 = 64", "fp23 = 64"), "unknown precision 'fp23'"),
    (CPU.replace("fp32 = 64 }", "fp32 = 64 }\nnominal_ghz = 3200")
     .replace('reference_sku = "page"', 'reference_sku = "page", nominal_ghz = "x"'),
     "nominal_ghz.*wrong unit"),
    (CPU.replace("fp32 = 64 }", "fp32 = 64 }\nnominal_ghz = 3.2"), "sources.nominal_ghz"),
    (ARM.replace('"0xd40"', '"d4zz"'), "field 'cpu_parts' entry 'd4zz' is not a hex id"),
    (ARM.replace("cpu_parts = [\"0xd40\", 0xd4f]", "cpu_parts = []"), "field 'cpu_parts' is empty"),
    (ARM.replace("cpu_implementer = 0x41\n", ""), "missing field 'cpu_implementer'"),
    (ARM.replace("cpu_implementer = 0x41", "cpu_implementer = 0x41\ncpu_family = 6"),
     "exactly one of"),
    (ARM.replace("cpu_implementer = 0x41\ncpu_parts = [\"0xd40\", 0xd4f]", "brand_prefixes = ['']"),
     "brand_prefixes"),
])
def test_cpu_validation_errors_name_the_field(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile_text(text, "user.toml")


# ------------------------------------------------------------------------ the data itself

def test_every_builtin_cpu_profile_has_sources_and_a_reference_sku():
    cpus = builtin_profiles().cpus
    assert len(cpus) >= 20
    ids = {c.id for c in cpus}
    assert {"amd-zen2-rome", "amd-zen3-milan", "amd-zen4-genoa", "amd-zen5-turin",
            "amd-zen5-client", "intel-cascadelake-sp", "intel-icelake-sp",
            "intel-sapphirerapids", "intel-emeraldrapids", "intel-graniterapids",
            "arm-neoverse-n1", "arm-neoverse-v1", "arm-neoverse-v2",
            "apple-m1", "apple-m2", "apple-m3", "apple-m4"} <= ids
    isa_ids = {i.id for i in builtin_profiles().isas}
    for c in cpus:
        assert c.sources.get("flops_per_cycle") and c.sources.get("reference_sku"), c.id
        assert {"name", "cores", "tdp_w"} <= set(c.reference_sku), c.id
        assert c.tdp_per_core_w > 0 and "fp32" in c.precisions, c.id
        assert set(c.precisions) <= set(PRECISIONS)
        assert set(c.requires.values()) <= isa_ids, c.id  # every requirement resolves


def test_builtin_x86_ranges_do_not_overlap():
    seen: dict = {}
    for c in builtin_profiles().cpus:
        if c.vendor_id is None:
            continue
        spans = [(m, m) for m in c.models] + list(c.model_ranges)
        for lo, hi in spans:
            for model in range(lo, hi + 1):
                key = (c.vendor_id, c.cpu_family, model)
                assert key not in seen, f"{c.id} and {seen.get(key)} both claim {key}"
                seen[key] = c.id
