"""Pick the best available meter for a device, recording why each better one was not used."""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.errors import MeterUnavailable
from profiler.meters.base import Meter


@dataclass
class MeterChoice:
    """The chosen meter (or None) and every candidate tried, best first, with its outcome."""

    meter: Meter | None
    tried: list[dict] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        """Why no meter was chosen, if none was."""
        if self.meter is not None:
            return None
        return "; ".join(f"{t['method']}: {t['reason']}" for t in self.tried) or "no meter known"


def cpu_full_load_power(cpu_tdp_w: float | None, cpu_info=None) -> tuple[float | None, str]:
    """Full-load power of this machine's cores for the estimate, and where it came from."""
    if cpu_tdp_w is not None:
        return float(cpu_tdp_w), "--cpu-tdp-w given by the user"
    from hardware_profiles.detect import match_cpu, read_cpuinfo

    info = cpu_info or read_cpuinfo()
    match = match_cpu(info)
    if match.profile is None:
        return None, f"{match.reason}; or pass --cpu-tdp-w WATTS"
    sku = match.profile.reference_sku
    power = match.profile.tdp_per_core_w * info.physical_cores
    return power, (f"{match.profile.id} reference SKU {sku['name']} ({sku['tdp_w']} W / "
                   f"{sku['cores']} cores) x {info.physical_cores} physical cores")


def select_meter(device_type: str, *, gpu_uuids: list[str] | None = None,
                 cpu_tdp_w: float | None = None, cpu_info=None, nvml=None) -> MeterChoice:
    """Best meter for ``device_type`` ('cuda' or 'cpu').

    GPU work is metered by NVML only: a CPU estimate would measure the wrong device.
    """
    choice = MeterChoice(meter=None)
    if device_type == "cuda":
        from profiler.meters.nvml import METHOD, NvmlEnergyMeter

        try:
            choice.meter = NvmlEnergyMeter(uuids=gpu_uuids, nvml=nvml)
            choice.tried.append({"method": METHOD, "available": True, "reason": None})
        except MeterUnavailable as e:
            choice.tried.append({"method": METHOD, "available": False, "reason": str(e)})
        return choice

    from profiler.meters.estimate import METHOD, CpuEstimateMeter

    power_w, source = cpu_full_load_power(cpu_tdp_w, cpu_info)
    if power_w is None:
        choice.tried.append({"method": METHOD, "available": False, "reason": source})
    else:
        choice.meter = CpuEstimateMeter(power_w, source)
        choice.tried.append({"method": METHOD, "available": True, "reason": None})
    return choice
