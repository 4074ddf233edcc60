"""The metered idle-then-load check: idle power once power has settled, then a bf16 matmul
load of at least 10 s, metered by NVML, with the energy counter against the sampled power
integral (a consistency check: both come from the same sensor) and the average power against
idle and the enforced power limit.

``python -m harness.selftest.load`` runs it on GPU 0 and prints one JSON document (the
selftest's ``idle_and_load`` phase runs it so in a child process group).
"""

from __future__ import annotations

import json
import sys
import time

import torch

from harness.selftest.summary import CONSISTENCY_NOTE


def metered_matmul_load(meter, seconds: float = 10.0, n: int = 8192):
    """A bf16 matmul load of at least ``seconds`` on the current GPU, inside one metered
    window; returns the window (its ``energy`` holds the counter and the power integral)."""
    from profiler.timing import TimedWindow

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    with TimedWindow(meter, torch.cuda.synchronize) as window:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(20):
                a @ b
            torch.cuda.synchronize()
    return window


def metered_idle_and_load(meter, idle_s: float, load_s: float, cooldown_s: float = 0.0):
    """Wait for power to settle (or ``cooldown_s``), an idle window of ``idle_s``, then a
    matmul load of ``load_s``, both metered; returns (idle window, load window, settle)."""
    from harness.idle import meter_power_reader, wait_before_idle
    from profiler.timing import TimedWindow

    settle = wait_before_idle(cooldown_s, meter_power_reader(meter, torch.cuda.synchronize))
    with TimedWindow(meter, torch.cuda.synchronize) as idle:
        time.sleep(idle_s)
    return idle, metered_matmul_load(meter, load_s), settle


def main() -> int:
    from profiler.meters.nvml import NvmlMeter

    props = torch.cuda.get_device_properties(0)
    meter = NvmlMeter(uuids=[str(props.uuid)])
    try:
        idle, load, settle = metered_idle_and_load(meter, 3.0, 10.0)
    finally:
        meter.close()
    gpu = load.energy.devices[0]
    doc = {"idle_power_w": idle.energy.avg_power_w, "idle_settle": settle,
           "load_power_w": gpu.avg_power_w, "power_limit_w": gpu.detail["power_limit_w"],
           "load_over_limit": (gpu.avg_power_w / gpu.detail["power_limit_w"]
                               if gpu.avg_power_w and gpu.detail.get("power_limit_w") else None),
           "duration_s": load.duration_s,
           "counter_energy_j": gpu.detail["counter_energy_j"],
           "integral_energy_j": gpu.detail["integral_energy_j"],
           "relative_disagreement": gpu.detail["relative_disagreement"],
           "agreement_means": CONSISTENCY_NOTE,
           "flags": list(gpu.flags), "clock_event_reasons": gpu.detail.get("clock_event_reasons"),
           "sampling_errors": gpu.detail.get("sampling_errors")}
    print(json.dumps(doc, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
