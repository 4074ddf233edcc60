"""The device a run uses: which one, how to synchronise it, its dense peaks and its key."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hardware_profiles.detect import cpu_peak_flops_per_s, match_cpu, read_cpuinfo
from profiler.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass
class Peak:
    """A dense peak FLOP/s for one precision, with its source, or None with the reason."""

    precision: str
    flops_per_s: float | None
    source: str


@dataclass
class DeviceContext:
    type: str  # "cuda" or "cpu"
    name: str
    torch_device: torch.device
    memory_gib: float | None = None
    uuids: list[str] = field(default_factory=list)
    profile_id: str | None = None
    profile_reason: str | None = None
    evidence: dict = field(default_factory=dict)
    _peaks: dict = field(default_factory=dict, repr=False)
    _cpu_info: object = field(default=None, repr=False)
    _profile: object = field(default=None, repr=False)
    _profiles: object = field(default=None, repr=False)

    @property
    def profile(self):
        """The matched DeviceProfile or CpuProfile, or None."""
        return self._profile

    @property
    def key(self) -> str:
        """A stable key for this physical device, under which its ceilings are stored."""
        if self.type == "cuda":
            return f"gpu:{self.uuids[0]}" if self.uuids else f"gpu:{self.name}"
        import socket

        return f"cpu:{socket.gethostname()}:{self.name}"

    def synchronize(self) -> None:
        if self.type == "cuda":
            torch.cuda.synchronize(self.torch_device)

    def peak(self, precision: str) -> Peak:
        """The vendor's dense peak for ``precision``; never another device's figure."""
        if self.type == "cpu":
            value, how = cpu_peak_flops_per_s(self._cpu_info, self._profile, precision,
                                              self._profiles)
            return Peak(precision, value, how if value is not None else
                        f"no theoretical peak for {self.name}: {how}")
        if self._profile is None:
            return Peak(precision, None, self.profile_reason or "no profile")
        value = self._profile.peak(precision)
        if value is None:
            return Peak(precision, None, f"profile {self._profile.id} has no dense {precision} peak")
        return Peak(precision, value, f"{self._profile.id}: {self._profile.sources['peak_tflops']}")

    def describe(self) -> dict:
        return {"type": self.type, "name": self.name, "key": self.key,
                "memory_gib": self.memory_gib,
                "uuids": self.uuids, "profile": self.profile_id,
                "profile_reason": self.profile_reason, "evidence": self.evidence}


def _nvml_gpu_info(uuid: str | None):
    """NVML's view of the GPU with this UUID (PCI id, power limit, memory), or None."""
    if not uuid:
        return None
    try:
        import pynvml

        from hardware_profiles.detect import read_gpus
        from profiler.meters.nvml import normalise_uuid

        pynvml.nvmlInit()
        try:
            return next((g for g in read_gpus(pynvml)
                         if normalise_uuid(g.uuid) == normalise_uuid(uuid)), None)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML: the name alone is the evidence
        return None


def cuda_context(index: int, profiles) -> DeviceContext:
    from hardware_profiles.detect import GpuInfo, match_gpu_info

    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "")) or None
    info = _nvml_gpu_info(uuid) or GpuInfo(index, props.name, uuid or "", None, None,
                                           props.total_memory / 2**30)
    match = match_gpu_info(info, profiles)
    return DeviceContext(
        type="cuda", name=props.name, torch_device=torch.device("cuda", index),
        memory_gib=props.total_memory / 2**30, uuids=[uuid] if uuid else [],
        profile_id=match.profile.id if match.profile else None,
        profile_reason=match.reason, evidence=match.evidence, _profile=match.profile,
        _profiles=profiles,
    )


def cpu_context(profiles) -> DeviceContext:
    info = read_cpuinfo()
    match = match_cpu(info, profiles)
    return DeviceContext(
        type="cpu", name=info.model_name, torch_device=torch.device("cpu"),
        profile_id=match.profile.id if match.profile else None, profile_reason=match.reason,
        evidence=match.evidence, _cpu_info=info, _profile=match.profile, _profiles=profiles,
    )


def resolve_device(choice: str = "auto", profile_files: tuple = ()) -> DeviceContext:
    """CUDA device 0 if present (or asked for), else the CPU.

    Profiles: the built-in ones, the user directory's, then ``profile_files``.
    """
    from hardware_profiles.profiles import load_profiles

    if choice not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {DEVICE_CHOICES}, got {choice!r}")
    profiles = load_profiles(profile_files)
    use_cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no CUDA device: "
                              "use --device cpu or install a CUDA build of torch")
        return cuda_context(0, profiles)
    return cpu_context(profiles)


def all_devices(profile_files: tuple = ()) -> list[DeviceContext]:
    """The CPU and every CUDA device torch sees."""
    from hardware_profiles.profiles import load_profiles

    profiles = load_profiles(profile_files)
    gpus = [cuda_context(i, profiles) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return [cpu_context(profiles), *gpus]
