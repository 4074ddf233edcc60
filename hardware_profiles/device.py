"""The device a run uses: which one, how to synchronise it, its dense peaks, its key, the
meters that serve it and the CPU power figure the estimate meter needs.

A :class:`DeviceContext` is resolved once (``resolve_device``) and travels to worker processes
as data (``to_spec``/``from_spec``): a worker never detects its device again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from hardware_profiles.cpuinfo import CpuInfo, host_name, host_root, read_cpuinfo
from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu, match_gpu_info
from hardware_profiles.identity import GpuIdentity
from hardware_profiles.profiles import ProfileSet, load_profiles
from profiler.errors import ConfigError
from profiler.meters.registry import DEVICE_KINDS, CpuPower, MeterRequest

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass
class Peak:
    """A dense peak FLOP/s for one precision, with its source, or None with the reason."""

    precision: str
    flops_per_s: float | None
    source: str


@dataclass
class DeviceContext:
    type: str  # torch device type: "cuda" (CUDA or ROCm) or "cpu"
    name: str
    torch_device: torch.device
    vendor: str = "cpu"  # "nvidia", "amd" or "cpu": the meter device kind
    memory_gib: float | None = None
    uuids: list[str] = field(default_factory=list)
    profile_id: str | None = None
    profile_reason: str | None = None
    evidence: dict = field(default_factory=dict)
    profiles: ProfileSet | None = field(default=None, repr=False)
    cpu_info: CpuInfo | None = field(default=None, repr=False)
    #: A MIG instance (``mig_instance``): name, UUID, SMs and memory of the instance.
    mig: dict | None = None

    @property
    def profile(self):
        """The matched DeviceProfile or CpuProfile, or None."""
        if self.profile_id is None or self.profiles is None:
            return None
        pool = self.profiles.cpus if self.type == "cpu" else self.profiles.devices
        return next((p for p in pool if p.id == self.profile_id), None)

    @property
    def key(self) -> str:
        """A stable key for this physical device, under which its ceilings are stored."""
        if self.type == "cuda":
            return f"gpu:{self.uuids[0]}" if self.uuids else f"gpu:{self.name}"
        return f"cpu:{host_name()}:{self.name}"

    @property
    def share_key(self) -> str:
        """Processes with the same share key meter the same device: their energy counts once."""
        return self.key if self.type == "cuda" else f"cpu:{host_name()}"

    def synchronize(self) -> None:
        if self.type == "cuda":
            torch.cuda.synchronize(self.torch_device)

    def peak(self, precision: str) -> Peak:
        """The vendor's dense peak for ``precision``; never another device's figure."""
        profile = self.profile
        if self.type == "cpu":
            value, how = cpu_peak_flops_per_s(self.cpu_info, profile, precision, self.profiles)
            return Peak(precision, value, how if value is not None else
                        f"no theoretical peak for {self.name}: {how}")
        if profile is None:
            return Peak(precision, None, self.profile_reason or "no profile")
        if self.mig is not None:
            return Peak(precision, None, MIG_PEAK_REASON.format(**self.mig, profile=profile.id))
        value = profile.peak(precision)
        if value is None:
            return Peak(precision, None, f"profile {profile.id} has no dense {precision} peak")
        return Peak(precision, value, f"{profile.id}: {profile.sources['peak_tflops']}")

    def cpu_power(self, cpu_tdp_w: float | None = None) -> tuple[CpuPower | None, str | None]:
        """Full-load power of this machine's cores for the estimate meter, or None and why.

        ``--cpu-tdp-w`` wins; else the matched profile's reference SKU (TDP per core x
        physical cores); else, for a CPU no profile knows, the generic per-core figure
        (:func:`generic_power_per_core_w`). Profile and generic figures carry the band of
        per-core power across the built-in CPU profiles' reference SKUs.
        """
        if self.type != "cpu":
            return None, "not a CPU"
        if cpu_tdp_w is not None:
            return CpuPower(float(cpu_tdp_w), "--cpu-tdp-w given by the user"), None
        info = self.cpu_info or read_cpuinfo()
        cores = info.physical_cores
        if not cores:
            return None, ("the CPU's core count is unknown (" + "; ".join(info.notes) +
                          "): pass --cpu-tdp-w WATTS")
        central, low, high, basis = generic_power_per_core_w(self.profiles or load_profiles())
        profile = self.profile
        if profile is None:
            return CpuPower(central * cores, (
                f"generic {central:.2f} W per core x {cores} physical cores (no profile for "
                f"this CPU; {basis}); pass --cpu-tdp-w WATTS or --profile FILE for a better "
                f"figure"), low * cores, high * cores, generic=True), None
        sku = profile.reference_sku
        own = profile.tdp_per_core_w
        return CpuPower(own * cores,
                        f"{profile.id} reference SKU {sku['name']} ({sku['tdp_w']} W / "
                        f"{sku['cores']} cores) x {cores} physical cores",
                        min(low, own) * cores, max(high, own) * cores), None

    def meter_request(self, cpu_tdp_w: float | None = None, **overrides) -> MeterRequest:
        """What the meter registry needs to meter this device."""
        power, reason = self.cpu_power(cpu_tdp_w) if self.type == "cpu" else (None, None)
        kind = self.vendor if self.type == "cuda" else "cpu"
        overrides.setdefault("sysfs_root", str(host_root()))
        return MeterRequest(kind=kind, gpu_uuids=tuple(self.uuids), cpu_power=power,
                            cpu_power_reason=reason, **overrides)

    def describe(self) -> dict:
        return {"type": self.type, "name": self.name, "key": self.key, "vendor": self.vendor,
                "memory_gib": self.memory_gib, "uuids": self.uuids, "profile": self.profile_id,
                "profile_reason": self.profile_reason, "evidence": self.evidence,
                "mig": self.mig}

    def to_spec(self) -> dict:
        """This context as JSON-able data, for a worker process (see ``from_spec``)."""
        info = None
        if self.cpu_info is not None:
            info = {**self.cpu_info.__dict__, "flags": sorted(self.cpu_info.flags)}
        return {**self.describe(), "index": self.torch_device.index, "cpu_info": info}

    @classmethod
    def from_spec(cls, spec: dict, profiles: ProfileSet) -> "DeviceContext":
        """The context ``to_spec`` described, with no detection; ``profiles`` are the sweep's."""
        info = spec.get("cpu_info")
        if info is not None:
            info = CpuInfo(**{**info, "flags": frozenset(info["flags"])})
        device = torch.device(spec["type"], spec["index"]) if spec["type"] == "cuda" \
            else torch.device("cpu")
        return cls(type=spec["type"], name=spec["name"], torch_device=device,
                   vendor=spec.get("vendor", "cpu"), memory_gib=spec.get("memory_gib"),
                   uuids=list(spec.get("uuids") or []), profile_id=spec.get("profile"),
                   profile_reason=spec.get("profile_reason"), evidence=spec.get("evidence") or {},
                   profiles=profiles, cpu_info=info, mig=spec.get("mig"))


MIG_PEAK_REASON = (
    "MIG instance {name} ({sm_count} SMs, {memory_gib:.0f} GiB): profile {profile}'s peak is "
    "the whole GPU's and the instance's share of it is not known here, so MFU is not "
    "computed (tokens/s and eta are); give the instance's own peak with --profile FILE")


def mig_instance(props, visible_entry: str = "") -> dict | None:
    """The MIG instance torch's device is (``props``: its ``get_device_properties``), or None.
    A MIG instance is named "... MIG 3g.40gb" by torch, or selected by a ``MIG-`` UUID in
    CUDA_VISIBLE_DEVICES; torch reports the instance's own SMs and memory."""
    name = str(props.name)
    if " MIG " not in f" {name} " and not visible_entry.upper().startswith("MIG-"):
        return None
    return {"name": name, "uuid": visible_entry if visible_entry.upper().startswith("MIG-")
            else None, "sm_count": props.multi_processor_count,
            "memory_gib": props.total_memory / 2**30}


def gpu_context(identity: GpuIdentity, index: int, profiles: ProfileSet,
                mig: dict | None = None) -> DeviceContext:
    """The context of torch's GPU ``index``, whose vendor identity is ``identity``; under
    MIG (``mig``) the memory is the instance's, and no whole-GPU peak is used."""
    match = match_gpu_info(identity, profiles)
    return DeviceContext(
        type="cuda", name=identity.name, torch_device=torch.device("cuda", index),
        vendor=identity.vendor, memory_gib=mig["memory_gib"] if mig else identity.memory_gib,
        mig=mig,
        uuids=[identity.uuid] if identity.uuid else [],
        profile_id=match.profile.id if match.profile else None,
        profile_reason=match.reason, evidence={**match.evidence, "identity": identity.source},
        profiles=profiles)


def cuda_context(index: int, profiles: ProfileSet) -> DeviceContext:
    from hardware_profiles.vendors import identify

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    entry = visible[index].strip() if index < len(visible) else ""
    mig = mig_instance(torch.cuda.get_device_properties(index), entry)
    return gpu_context(identify(index), index, profiles, mig)


def cpu_context(profiles: ProfileSet, info: CpuInfo | None = None) -> DeviceContext:
    info = info or read_cpuinfo()
    match = match_cpu(info, profiles)
    return DeviceContext(
        type="cpu", name=info.model_name, torch_device=torch.device("cpu"),
        profile_id=match.profile.id if match.profile else None, profile_reason=match.reason,
        evidence=match.evidence, profiles=profiles, cpu_info=info)


def resolve_device(choice: str = "auto", profile_files: tuple = (), index: int = 0) -> DeviceContext:
    """CUDA device ``index`` if present (or asked for), else the CPU.

    Profiles: the built-in ones, the user directory's, then ``profile_files``.
    """
    if choice not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {DEVICE_CHOICES}, got {choice!r}")
    profiles = load_profiles(profile_files)
    use_cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no CUDA device: "
                              "use --device cpu or install a CUDA build of torch")
        return cuda_context(index, profiles)
    return cpu_context(profiles)


def all_devices(profile_files: tuple = ()) -> list[DeviceContext]:
    """The CPU and every CUDA device torch sees."""
    profiles = load_profiles(profile_files)
    gpus = [cuda_context(i, profiles) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return [cpu_context(profiles), *gpus]


def meter_requests(contexts: list[DeviceContext], cpu_tdp_w: float | None = None) -> list[MeterRequest]:
    """One meter request per device, plus one for every device kind none of them is, so that
    ``etameter meters`` lists every meter etameter knows with why it is unavailable here."""
    requests = [ctx.meter_request(cpu_tdp_w=cpu_tdp_w) for ctx in contexts]
    seen = {r.kind for r in requests}
    return requests + [MeterRequest(kind) for kind in DEVICE_KINDS if kind not in seen]


def generic_power_per_core_w(profiles: ProfileSet) -> tuple[float, float, float, str]:
    """(central, low, high) full-load W per core for a CPU no profile knows: the median, least
    and greatest TDP per core of the CPU profiles' reference SKUs, and how that was derived."""
    values = sorted(p.tdp_per_core_w for p in profiles.cpus)
    if not values:
        raise ConfigError("no CPU profile has a reference SKU: the generic CPU power needs one")
    n = len(values)
    central = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    return central, values[0], values[-1], (
        f"median of {n} built-in CPU profiles' reference-SKU TDP per core, band "
        f"{values[0]:.2f}-{values[-1]:.2f} W per core")

