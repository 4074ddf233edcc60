"""A labelled CPU energy *estimate* for machines with no readable power counter.

Model (documented in docs/meters.md)::

    power_w  = full_load_power_w * busy_fraction
    energy_j = power_w * duration_s

``busy_fraction`` is the benchmark process's own share of all CPU time over the window: the
CPU time of this process (``psutil.Process().cpu_times()``: every thread, plus the children it
has waited for) over the CPU time of all cores (``psutil.cpu_times()``), so other tenants'
work on a shared machine is not charged to the run. Where the process's times cannot be read,
and under torchrun (the ranks share the CPU and the node counts its energy once), it is the
machine's non-idle share instead; the reading says which (``utilisation``).
``full_load_power_w`` is given by the user (the power of the
cores this machine has at full load, e.g. the package TDP on bare metal), or derived from the
CPU profile's reference SKU as ``tdp_w / cores * physical_cores``, or, for a CPU no profile
knows, from a generic per-core figure (flagged ``generic_cpu_power``). A figure from a profile
or the generic one carries a low/high band, and so does the energy. Idle power is not
modelled. Every reading is labelled ``estimated``; it is never a measurement.
"""

from __future__ import annotations

import os
from typing import Callable

from profiler.meters.base import FLAG_ESTIMATED, FLAG_GENERIC_CPU_POWER, DeviceEnergy, EnergyReading, Meter, flag_short
from profiler.errors import MeterUnavailable
from profiler.meters.registry import MeterSpec, register

METHOD = "estimated"
SCOPE = "cpu_estimate"
MODEL = "full_load_power_w x busy_fraction (psutil cpu_times) x duration_s"
#: What busy_fraction measured, by ``utilisation``.
UTILISATION = {
    "process": "this process's CPU time (its threads and waited-for children, "
               "psutil.Process().cpu_times) over all cores' CPU time",
    "machine": "the whole machine's non-idle share of CPU time (psutil.cpu_times): other "
               "processes' work is counted too",
}


def process_busy_fraction(proc_before, proc_after, before, after) -> float:
    """This process's share of all cores' CPU time between two snapshots of
    ``psutil.Process().cpu_times()`` and of ``psutil.cpu_times()``."""
    total = sum(after) - sum(before)
    if total <= 0:
        return 0.0
    used = sum(getattr(proc_after, k, 0.0) - getattr(proc_before, k, 0.0)
               for k in ("user", "system", "children_user", "children_system"))
    return min(1.0, max(0.0, used / total))


def busy_fraction(before, after) -> float:
    """Share of CPU time that was busy between two psutil.cpu_times() snapshots."""
    total = sum(after) - sum(before)
    if total <= 0:
        return 0.0
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    return min(1.0, max(0.0, 1.0 - idle / total))


class CpuEstimateMeter(Meter):
    """Estimated CPU energy from a full-load power figure and measured utilisation."""

    method = METHOD
    min_window_s = 1.0  # psutil's CPU times tick at 10 ms

    def __init__(self, full_load_power_w: float, power_source: str,
                 cpu_times: Callable | None = None, *, low_w: float | None = None,
                 high_w: float | None = None, generic: bool = False,
                 process_times: Callable | None = None, machine_reason: str | None = None):
        """``process_times`` (``psutil.Process().cpu_times``) makes the utilisation this
        process's; without it (``machine_reason`` says why) it is the machine's."""
        if not full_load_power_w > 0 or full_load_power_w == float("inf"):
            raise ValueError(f"full_load_power_w must be a positive number, got {full_load_power_w}")
        self.full_load_power_w = float(full_load_power_w)
        self.power_source = power_source
        self.low_w, self.high_w, self.generic = low_w, high_w, generic
        if cpu_times is None:
            import psutil

            cpu_times = psutil.cpu_times
        self._cpu_times = cpu_times
        self._process_times = process_times
        self.utilisation = "process" if process_times is not None else "machine"
        self.machine_reason = None if process_times is not None else machine_reason
        self._before = None

    def describe(self) -> dict:
        return {**super().describe(), "scope": SCOPE, "estimated": True, "model": MODEL,
                "full_load_power_w": self.full_load_power_w, "power_source": self.power_source,
                "full_load_power_band_w": [self.low_w, self.high_w] if self.low_w else None,
                "generic": self.generic, "utilisation": self.utilisation,
                "utilisation_source": UTILISATION[self.utilisation],
                "utilisation_reason": self.machine_reason}

    def _snapshot(self):
        return (self._cpu_times(),
                self._process_times() if self._process_times is not None else None)

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self, duration_s: float) -> EnergyReading:
        if self._before is None:
            raise RuntimeError("CpuEstimateMeter.stop() called before start()")
        (before, proc_before), (after, proc_after) = self._before, self._snapshot()
        machine = busy_fraction(before, after)
        busy = (machine if proc_before is None else
                process_busy_fraction(proc_before, proc_after, before, after))
        self._before = None
        power_w = self.full_load_power_w * busy
        band = (self.low_w * busy * duration_s, self.high_w * busy * duration_s) \
            if self.low_w is not None and self.high_w is not None else (None, None)
        device = DeviceEnergy(
            device="cpu", energy_j=power_w * duration_s, method=METHOD, scope=SCOPE,
            estimated=True, avg_power_w=power_w,
            flags=(FLAG_ESTIMATED, *((FLAG_GENERIC_CPU_POWER,) if self.generic else ()),
                   *flag_short(duration_s, self.min_window_s)),
            detail={"model": MODEL, "full_load_power_w": self.full_load_power_w,
                    "busy_fraction": busy, "machine_busy_fraction": machine,
                    "utilisation": self.utilisation,
                    "utilisation_source": UTILISATION[self.utilisation],
                    "power_source": self.power_source},
            energy_low_j=band[0], energy_high_j=band[1],
        )
        return EnergyReading(duration_s=duration_s, devices=(device,))


def _from_request(request) -> CpuEstimateMeter:
    power = request.cpu_power
    if power is None:
        raise MeterUnavailable(request.cpu_power_reason or "no full-load power figure for this "
                               "CPU: pass --cpu-tdp-w WATTS")
    process_times, reason = _own_cpu_times()
    return CpuEstimateMeter(power.watts, power.source, low_w=power.low_w, high_w=power.high_w,
                            generic=power.generic, process_times=process_times,
                            machine_reason=reason)


def _own_cpu_times() -> tuple[Callable | None, str | None]:
    """This process's CPU-time reader, or None with why the machine's utilisation is used."""
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        return None, ("torchrun ranks share this CPU and the node counts its energy once: the "
                      "machine's utilisation covers every rank")
    import psutil

    try:
        proc = psutil.Process()
        proc.cpu_times()
    except (psutil.Error, OSError) as e:
        return None, f"this process's CPU times are unreadable ({e})"
    return proc.cpu_times, None


register(MeterSpec(METHOD, kinds=("cpu",), priority=10, factory=_from_request))
