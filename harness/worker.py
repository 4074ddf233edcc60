"""Entry point of a process that runs one variant of a plan: a sweep's per-variant worker, or
one rank under torchrun (``--nproc``).

``python -m harness.worker SPEC.json``: the spec holds the serialised plan (made once by the
parent), the database, the run (already recorded as running by the parent) and, under
torchrun, every rank's device. The worker detects nothing and decides nothing again; it
records the outcome itself (rank 0 under torchrun). If it dies without doing so, the parent
marks the run failed with its output.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    from harness.execute import execute_variant
    from harness.plan import Plan
    from profiler.store import Store

    with open(argv[1]) as f:
        spec = json.load(f)
    plan = Plan.from_json(spec["plan"])
    distributed = "RANK" in os.environ and spec.get("rank_devices")
    if distributed:
        plan = _join_group(plan, spec["rank_devices"])
    try:
        execute_variant(Store(spec["db"]), spec["run_id"], plan, _observer())
    except KeyboardInterrupt:
        return 130
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0


def _observer():
    """Progress lines on stderr for the parent's display (rank 0 only under torchrun)."""
    from harness.execute import Observer
    from profiler.progress import StreamProgress

    observer = Observer()
    if os.environ.get("RANK", "0") == "0":
        observer.progress = StreamProgress()
    return observer


def _join_group(plan, rank_devices: list[dict]):
    """Join the torchrun group; the plan's device becomes this rank's (from the parent)."""
    from dataclasses import replace

    import torch
    import torch.distributed as dist

    from hardware_profiles.device import DeviceContext

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    ctx = DeviceContext.from_spec(rank_devices[local_rank], plan.ctx.profiles)
    if ctx.type == "cuda":
        torch.cuda.set_device(ctx.torch_device)
        dist.init_process_group(backend="nccl", device_id=ctx.torch_device)
    else:
        dist.init_process_group(backend="gloo")
        # Ranks share the CPU: split its cores rather than oversubscribe them.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return replace(plan, ctx=ctx)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
