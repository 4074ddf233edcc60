"""Match the machine's devices to profiles, recording the evidence for each match.

Names are compared whole (after normalising case and spaces), never by substring: "L4" must
not match "L40S" and "B300" must not match "GB300". A PCI device id, where known, outranks
the name. An unmatched device gets no profile, never another device's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hardware_profiles.cpuinfo import CpuInfo
from hardware_profiles.identity import GpuIdentity
from hardware_profiles.profiles import (CpuProfile, DeviceProfile, ProfileSet, builtin_profiles,
                                        load_profiles)

#: What to do about a device with no profile: only a profile gives a vendor peak (and so MFU);
#: ``etameter calibrate`` gives MFU against the measured ceiling beside it.
NO_PROFILE_HINT = ("add one with --profile FILE or in $ETAMETER_PROFILES (see "
                   "docs/hardware-profiles.md); `etameter calibrate` then adds MFU against the "
                   "measured matmul ceiling")


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


@dataclass(frozen=True)
class Match:
    """The outcome of matching one device: a profile or None, the evidence, and the reason."""

    profile: DeviceProfile | CpuProfile | None
    evidence: dict = field(default_factory=dict)
    reason: str | None = None


def match_gpu(name: str, pci_device_id: int | None = None,
              profiles: ProfileSet | None = None) -> Match:
    """Match a GPU by its PCI device id (preferred) or its exact NVML/torch name."""
    profiles = profiles or builtin_profiles()
    evidence: dict = {"name": name}
    if pci_device_id is not None:
        evidence["pci_device_id"] = f"0x{pci_device_id:04x}"
        by_pci = [p for p in profiles.devices if pci_device_id in p.pci_device_ids]
        if len(by_pci) == 1:
            evidence["matched_by"] = "pci_device_id"
            return Match(by_pci[0], evidence)
    by_name = [p for p in profiles.devices if _norm(name) in {_norm(n) for n in p.names}]
    if len(by_name) == 1:
        evidence["matched_by"] = "name"
        return Match(by_name[0], evidence)
    if len(by_name) > 1:
        ids = ", ".join(p.id for p in by_name)
        return Match(None, evidence, f"name {name!r} matches several profiles ({ids}); "
                                     f"the PCI device id is needed to tell them apart")
    return Match(None, evidence, f"no profile for {name}: {NO_PROFILE_HINT}")


def match_cpu(info: CpuInfo, profiles: ProfileSet | None = None) -> Match:
    """Match a CPU by what identifies its microarchitecture, never by the marketing name.

    x86: vendor_id + cpu family + model (numbers or ranges); this works in a VM that shows
    only "AMD EPYC" as the name. Arm: CPU implementer + CPU part. Apple Silicon (macOS):
    the sysctl brand string's prefix ("Apple M2" for "Apple M2 Pro").
    """
    profiles = profiles or builtin_profiles()
    evidence: dict = {"model_name": info.model_name, "vendor_id": info.vendor_id,
                      "cpu_family": info.cpu_family, "model": info.model}
    if info.cpu_implementer is not None or info.cpu_part is not None:
        evidence["cpu_implementer"] = (f"0x{info.cpu_implementer:02x}"
                                       if info.cpu_implementer is not None else None)
        evidence["cpu_part"] = f"0x{info.cpu_part:03x}" if info.cpu_part is not None else None
    if info.source == "sysctl":
        evidence["brand_string"] = info.model_name
        evidence["performance_cores"] = info.performance_cores
    if info.hypervisor:
        evidence["hypervisor"] = True
    for p in profiles.cpus:
        if (p.vendor_id is not None and p.vendor_id == info.vendor_id
                and p.cpu_family == info.cpu_family and p.matches_model(info.model)):
            return Match(p, {**evidence, "matched_by": "vendor_id+cpu_family+model"})
        if (p.cpu_implementer is not None and p.cpu_implementer == info.cpu_implementer
                and info.cpu_part in p.cpu_parts):
            return Match(p, {**evidence, "matched_by": "cpu_implementer+cpu_part"})
        if p.brand_prefixes and info.source == "sysctl" and p.matches_brand(info.model_name):
            return Match(p, {**evidence, "matched_by": "brand_string"})
    if info.cpu_implementer is not None:
        ident = (f"implementer 0x{info.cpu_implementer:02x}, part "
                 + (f"0x{info.cpu_part:03x}" if info.cpu_part is not None else "unknown"))
    elif info.source == "sysctl":
        ident = f"brand string {info.model_name!r}"
    else:
        ident = f"vendor {info.vendor_id}, family {info.cpu_family}, model {info.model}"
    return Match(None, evidence, f"no profile for CPU {info.model_name} ({ident}): "
                                 f"{NO_PROFILE_HINT}")


def isa_flops_per_cycle(info: CpuInfo, precision: str,
                        profiles: ProfileSet | None = None) -> tuple[float | None, str | None]:
    """The best FLOPs (OPs for integers) per cycle the CPU's instruction-set flags allow."""
    profiles = profiles or builtin_profiles()
    best = None
    for isa in profiles.isas:
        value = isa.flops_per_cycle.get(precision)
        if value is not None and set(isa.flags) <= info.flags and (best is None or value > best[0]):
            best = (value, isa.id)
    return best if best else (None, None)


def _profile_figure(info: CpuInfo, profile: CpuProfile, precision: str,
                    profiles: ProfileSet) -> tuple[float | None, str | None, str | None]:
    """The profile's per-cycle figure where the CPU shows what it needs: (value, origin, why not)."""
    if precision not in profile.flops_per_cycle:
        return None, None, None
    needed = profile.requires.get(precision)
    if needed is None:
        return profile.flops_per_cycle[precision], profile.id, None
    isa = next((i for i in profiles.isas if i.id == needed), None)
    if isa is None:
        return None, None, f"{profile.id}'s {precision} figure needs ISA {needed!r}, which no " \
                           f"[[isa]] entry defines"
    if not set(isa.flags) <= info.flags:
        missing = " ".join(sorted(set(isa.flags) - info.flags))
        return None, None, (f"{profile.id}'s {precision} figure needs {needed} (flags {missing} "
                            f"not shown, e.g. hidden by a hypervisor)")
    return profile.flops_per_cycle[precision], f"{profile.id}, {needed}", None


def cpu_peak_flops_per_s(info: CpuInfo, profile: CpuProfile | None, precision: str,
                         profiles: ProfileSet | None = None) -> tuple[float | None, str]:
    """Theoretical peak ``cores x frequency x FLOPs/cycle``; returns (value or None, how/why).

    FLOPs/cycle come from the microarchitecture's profile where it gives the precision (and
    the CPU shows the instructions the figure needs), else from the best instruction-set
    extension the CPU's flags show. The how-string says what the figure rests on: an "ISA
    assumption" when no microarchitecture profile matched, and a "nominal clock under a
    hypervisor" when the clock is the guest's 'cpu MHz' rather than cpufreq's maximum.
    """
    profiles = profiles or builtin_profiles()
    per_cycle, origin, skipped = None, None, None
    isa_only = False
    if profile is not None:
        per_cycle, origin, skipped = _profile_figure(info, profile, precision, profiles)
    if per_cycle is None:
        per_cycle, isa = isa_flops_per_cycle(info, precision, profiles)
        if per_cycle is not None:
            isa_only = profile is None
            origin = f"ISA {isa}" + (", no microarchitecture profile: assumes two FMA units"
                                     if profile is None else "")
            if skipped:
                origin += f"; {skipped}"
    if per_cycle is None:
        why = f"; {skipped}" if skipped else ""
        return None, (f"no {precision} FLOPs per cycle for {info.model_name}: neither a CPU "
                      f"profile nor its instruction-set flags give one{why}")
    freq_hz, freq_source = info.frequency_hz, info.frequency_source
    nominal_from_profile = False
    if freq_hz is None and profile is not None and profile.nominal_ghz:
        freq_hz = profile.nominal_ghz * 1e9
        freq_source = f"nominal clock from profile {profile.id}: {profile.sources['nominal_ghz']}"
        nominal_from_profile = True
    ignored = f" ({'; '.join(info.notes)})" if info.notes else ""
    if freq_hz is None:
        return None, ("the CPU frequency is not exposed (no cpufreq, no 'cpu MHz')"
                      if not ignored else f"the CPU frequency is unknown{ignored}")
    cores, core_kind = info.physical_cores, "cores"
    if info.performance_cores:
        cores, core_kind = info.performance_cores, "performance cores (efficiency cores not counted)"
    if not cores:
        return None, f"the CPU's core count is unknown{ignored}"
    unit = "OPs" if precision.startswith("int") else "FLOPs"
    value = cores * freq_hz * per_cycle
    how = (f"{cores} {core_kind} x {freq_hz / 1e9:.3f} GHz [{freq_source}] x {per_cycle:g} "
           f"{precision} {unit}/cycle ({origin})")
    basis = []
    if isa_only:
        basis.append("ISA assumption (instruction-set flags only, no microarchitecture profile)")
    if info.hypervisor and not (freq_source or "").startswith("cpufreq") and not nominal_from_profile:
        basis.append("nominal clock under a hypervisor ('cpu MHz', not cpufreq)")
    if nominal_from_profile:
        basis.append("nominal clock from the profile (the CPU exposes none)")
    how += "; " + ("theoretical figure resting on: " + ", ".join(basis) if basis else
                   "theoretical figure from the microarchitecture profile")
    how += f"; ignored as impossible{ignored}" if ignored else ""
    return value, how


def match_gpu_info(gpu: GpuIdentity, profiles: ProfileSet | None = None) -> Match:
    """Match by PCI id or exact name, then check memory and power limit against the profile."""
    match = match_gpu(gpu.name, gpu.pci_device_id, profiles)
    evidence = {**match.evidence, "power_limit_w": gpu.power_limit_w, "memory_gib": gpu.memory_gib}
    p = match.profile
    notes = []
    if p is not None:
        if gpu.memory_gib and p.memory_gib and abs(gpu.memory_gib - p.memory_gib) > 0.15 * p.memory_gib:
            notes.append(f"memory {gpu.memory_gib:.0f} GiB differs from the profile's "
                         f"{p.memory_gib:.0f} GiB")
        if gpu.power_limit_w and p.tdp_w and gpu.power_limit_w > 1.05 * p.tdp_w:
            notes.append(f"power limit {gpu.power_limit_w:.0f} W exceeds the profile's TDP "
                         f"{p.tdp_w:.0f} W")
    if notes:
        evidence["inconsistencies"] = notes
    return Match(p, evidence, match.reason)


def find_device_profile(name: str, profiles: ProfileSet | None = None) -> DeviceProfile:
    """A profile by its id, display name or NVML name (whole name, any case).

    Raises ProfileError listing the known ids when nothing matches exactly.
    """
    from profiler.errors import ProfileError

    profiles = profiles or load_profiles()
    wanted = _norm(name)
    for p in profiles.devices:
        if wanted in {_norm(p.id), _norm(p.display_name), *(_norm(n) for n in p.names)}:
            return p
    known = ", ".join(p.id for p in profiles.devices)
    raise ProfileError(f"no profile for device {name!r}: use one of {known}, "
                       "or give the peak with --peak-tflops")
