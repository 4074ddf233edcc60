"""Pick the best available meter for a device, recording why each better one was not used.

The candidates come from the registry (:mod:`profiler.meters.registry`), filtered by the
device kind a run uses: a GPU run is metered by its vendor's meter only (a CPU meter would
measure the wrong device); a CPU run uses RAPL where its counters are readable, else the
labelled estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.errors import MeterUnavailable
from profiler.meters.base import Meter
from profiler.meters.registry import DEVICE_KINDS, MeterRequest, specs


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


def select_meter(request: MeterRequest) -> MeterChoice:
    """The best available meter for ``request.kind`` (``nvidia``, ``amd`` or ``cpu``)."""
    if request.kind not in DEVICE_KINDS:
        raise ValueError(f"device kind must be one of {DEVICE_KINDS}, got {request.kind!r}")
    choice = MeterChoice(meter=None)
    for spec in specs(request.kind):
        try:
            choice.meter = spec.factory(request)
        except MeterUnavailable as e:
            choice.tried.append({"method": spec.method, "available": False, "reason": str(e)})
            continue
        choice.tried.append({"method": spec.method, "available": True, "reason": None})
        break
    return choice


def probe_meters(requests: list[MeterRequest]) -> list[dict]:
    """Every registered meter for each request's device kind: available here or not, why
    not, and what it sees."""
    report = []
    for request in requests:
        for spec in specs(request.kind):
            entry = {"meter": spec.method, "for": request.kind}
            try:
                meter = spec.factory(request)
            except MeterUnavailable as e:
                report.append({**entry, "available": False, "reason": str(e)})
                continue
            try:
                report.append({**entry, "available": True, "reason": None, **meter.describe()})
            finally:
                meter.close()
    return report
