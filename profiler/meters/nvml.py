"""NVIDIA GPU energy through NVML (nvidia-ml-py, module ``pynvml``).

Energy comes from ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded,
Volta and newer): the difference between the window's edges. GPUs are identified by UUID
and de-duplicated, so a GPU that several ranks or indices share is counted once; the set of
GPUs follows CUDA_VISIBLE_DEVICES through the UUIDs torch reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from profiler.errors import MeterUnavailable
from profiler.meters.base import DeviceEnergy, EnergyReading, Meter, flag_short

METHOD = "nvml_counter"
SCOPE = "gpu_board"


def load_pynvml():
    """Import pynvml, or raise MeterUnavailable with the install hint."""
    try:
        import pynvml
    except ImportError as e:
        raise MeterUnavailable(
            "pynvml is not importable: pip install nvidia-ml-py"
        ) from e
    return pynvml


def normalise_uuid(uuid: str | bytes) -> str:
    if isinstance(uuid, bytes):
        uuid = uuid.decode()
    uuid = str(uuid).strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


@dataclass
class _Gpu:
    label: str
    uuid: str
    name: str
    handle: object
    start_mj: int | None = None


def _visible_selectors(uuids: list[str] | None) -> list[tuple[str, object]]:
    """How to find the run's GPUs: by torch UUID, else by CUDA_VISIBLE_DEVICES, else all."""
    if uuids:
        return [("uuid", u) for u in uuids]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return []
    selectors = []
    for item in (x.strip() for x in env.split(",") if x.strip()):
        selectors.append(("index", int(item)) if item.isdigit() else ("uuid", item))
    return selectors


class NvmlEnergyMeter(Meter):
    """Energy of the run's GPUs from NVML's cumulative energy counter."""

    method = METHOD
    min_window_s = 1.0

    def __init__(self, uuids: list[str] | None = None, nvml=None):
        self._nvml = nvml or load_pynvml()
        try:
            self._nvml.nvmlInit()
        except Exception as e:  # NVMLError and its subclasses, or a missing library
            raise MeterUnavailable(f"NVML failed to initialise: {e}") from e
        self._initialised = True
        try:
            self._gpus = self._resolve(uuids)
            for gpu in self._gpus:
                self._read_mj(gpu)  # probe: pre-Volta GPUs do not support the counter
        except Exception:
            self.close()
            raise

    def _resolve(self, uuids: list[str] | None) -> list[_Gpu]:
        nv = self._nvml
        selectors = _visible_selectors(uuids)
        if not selectors:
            selectors = [("index", i) for i in range(nv.nvmlDeviceGetCount())]
        gpus: dict[str, _Gpu] = {}
        for kind, value in selectors:
            try:
                if kind == "index":
                    handle = nv.nvmlDeviceGetHandleByIndex(value)
                else:
                    handle = nv.nvmlDeviceGetHandleByUUID("GPU-" + normalise_uuid(value))
            except Exception as e:
                raise MeterUnavailable(f"NVML cannot find GPU {kind} {value}: {e}") from e
            uuid = normalise_uuid(nv.nvmlDeviceGetUUID(handle))
            if uuid not in gpus:  # one entry per physical GPU, however often it is named
                name = nv.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else name
                gpus[uuid] = _Gpu(f"gpu:{len(gpus)}", uuid, name, handle)
        if not gpus:
            raise MeterUnavailable("NVML sees no GPU")
        return list(gpus.values())

    def _read_mj(self, gpu: _Gpu) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
        except Exception as e:
            raise MeterUnavailable(
                f"the NVML energy counter is not available on {gpu.name} ({e}); "
                "it needs a Volta or newer GPU"
            ) from e

    @property
    def uuids(self) -> list[str]:
        return [g.uuid for g in self._gpus]

    def describe(self) -> dict:
        return {**super().describe(), "scope": SCOPE,
                "devices": [{"name": g.name, "uuid": g.uuid} for g in self._gpus]}

    def start(self) -> None:
        for gpu in self._gpus:
            gpu.start_mj = self._read_mj(gpu)

    def stop(self, duration_s: float) -> EnergyReading:
        readings = []
        for gpu in self._gpus:
            if gpu.start_mj is None:
                raise RuntimeError("NvmlEnergyMeter.stop() called before start()")
            energy_j = (self._read_mj(gpu) - gpu.start_mj) / 1e3
            readings.append(DeviceEnergy(
                device=gpu.label, energy_j=energy_j, method=METHOD, scope=SCOPE,
                avg_power_w=energy_j / duration_s if duration_s > 0 else None,
                flags=flag_short(duration_s, self.min_window_s),
                detail={"name": gpu.name, "uuid": gpu.uuid},
            ))
            gpu.start_mj = None
        return EnergyReading(duration_s=duration_s, devices=tuple(readings))

    def close(self) -> None:
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down a half-initialised library is best effort
                pass
