"""The software and hardware environment a run was taken in, stored with every run."""

from __future__ import annotations

import platform
import socket
import sys


def _nvml_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no library: the field is simply unknown
        return None


def collect_environment(device_type: str) -> dict:
    """etameter, Python, torch, CUDA and driver versions, the devices and the host."""
    import torch

    import profiler
    from hardware_profiles.cpuinfo import read_cpuinfo

    cpu = read_cpuinfo()
    env = {
        "etameter_version": profiler.__version__,
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "driver_version": None,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_model": cpu.model_name,
        "cpu_logical_count": cpu.logical_cpus,
        "cpu_physical_cores": cpu.physical_cores,
        "torch_num_threads": torch.get_num_threads(),
        "executable": sys.executable,
        "gpus": [],
    }
    if device_type == "cuda":
        env["driver_version"] = _nvml_driver_version()
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            env["gpus"].append({
                "index": i, "name": props.name, "uuid": str(getattr(props, "uuid", "")),
                "memory_gib": props.total_memory / 2**30,
                "compute_capability": f"{props.major}.{props.minor}",
            })
    return env
