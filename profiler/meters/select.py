"""Pick the best available meter for a device, recording why each better one was not used.

Order: a CUDA run is metered by NVML only (a CPU meter would measure the wrong device).
A CPU run uses RAPL where its counters are readable, else the labelled estimate.
"""

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


def _nvml(gpu_uuids, nvml, probe_s) -> Meter:
    from profiler.meters.nvml import NvmlMeter

    return NvmlMeter(uuids=gpu_uuids, nvml=nvml, probe_s=probe_s)


def _rapl(sysfs_root) -> Meter:
    from profiler.meters.rapl import RaplMeter

    return RaplMeter(root=sysfs_root)


def _estimate(cpu_tdp_w, cpu_info) -> Meter:
    from profiler.meters.estimate import CpuEstimateMeter

    power_w, source = cpu_full_load_power(cpu_tdp_w, cpu_info)
    if power_w is None:
        raise MeterUnavailable(source)
    return CpuEstimateMeter(power_w, source)


def _candidates(device_type: str, *, gpu_uuids=None, cpu_tdp_w=None, cpu_info=None, nvml=None,
                sysfs_root="/", probe_s: float = 0.5):
    """(method, factory) pairs for a device type, best first."""
    if device_type == "cuda":
        return [("nvml", lambda: _nvml(gpu_uuids, nvml, probe_s))]
    return [("rapl", lambda: _rapl(sysfs_root)),
            ("estimated", lambda: _estimate(cpu_tdp_w, cpu_info))]


def select_meter(device_type: str, **kwargs) -> MeterChoice:
    """Best available meter for ``device_type`` ('cuda' or 'cpu').

    Keyword arguments: ``gpu_uuids``, ``cpu_tdp_w``, ``cpu_info``, ``nvml`` (a pynvml module,
    for tests), ``sysfs_root``, ``probe_s``.
    """
    choice = MeterChoice(meter=None)
    for method, factory in _candidates(device_type, **kwargs):
        try:
            choice.meter = factory()
        except MeterUnavailable as e:
            choice.tried.append({"method": method, "available": False, "reason": str(e)})
            continue
        choice.tried.append({"method": method, "available": True, "reason": None})
        break
    return choice


def probe_meters(**kwargs) -> list[dict]:
    """Every meter etameter knows, whether it is available here, why not, and what it sees."""
    report = []
    for device_type in ("cuda", "cpu"):
        for method, factory in _candidates(device_type, **kwargs):
            entry = {"meter": method, "for": device_type}
            try:
                meter = factory()
            except MeterUnavailable as e:
                report.append({**entry, "available": False, "reason": str(e)})
                continue
            try:
                report.append({**entry, "available": True, "reason": None, **meter.describe()})
            finally:
                meter.close()
    return report
