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
    from profiler.lifecycle import die_with_parent, exit_code, stop_signals_interrupt

    parent = os.getppid()
    # Before the heavy imports: SIGTERM and SIGHUP (and the parent's death, which sends
    # SIGTERM) end the run as interrupted, like Ctrl-C.
    with stop_signals_interrupt(parent_pid=parent):
        die_with_parent(parent)
        spec = None
        try:
            with open(argv[1]) as f:
                spec = json.load(f)
            return _run(spec)
        except KeyboardInterrupt as e:
            _record_interrupt(spec, e)
            return exit_code(e)


def _record_interrupt(spec: dict | None, exc: BaseException) -> None:
    """An interruption before the run's own code took over (during the imports, say): the
    worker records it, since its parent may be gone (rank 0 only under torchrun)."""
    if not spec or int(os.environ.get("RANK", 0)) != 0:
        return
    from profiler.lifecycle import interrupt_reason
    from profiler.store import Store

    store = Store(spec["db"])
    if store.get_run(spec["run_id"])["status"] == "running":
        store.finish_run(spec["run_id"], "interrupted", interrupt_reason(exc))


def _run(spec: dict) -> int:
    from harness.execute import execute_variant
    from harness.plan import Plan
    from profiler.store import Store

    plan = Plan.from_json(spec["plan"])
    distributed = "RANK" in os.environ and spec.get("rank_devices")
    if distributed:
        plan = _join_group(plan, spec["rank_devices"])
    try:
        execute_variant(Store(spec["db"]), spec["run_id"], plan, _observer())
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
    ranks = _node_ranks(plan)
    if ctx.type == "cuda":
        torch.cuda.set_device(ctx.torch_device)
        dist.init_process_group(backend="nccl", device_id=ctx.torch_device, **ranks)
    else:
        dist.init_process_group(backend="gloo", **ranks)
        # Ranks share the CPU: split its cores rather than oversubscribe them.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if plan.cfg.nnodes:
        _check_same_workload(plan, dist)
    return replace(plan, ctx=ctx)


def _node_ranks(plan) -> dict:
    """Across nodes, global rank = node rank x ranks per node + local rank (c10d's rendezvous
    orders nodes by address and pid, not by --node-rank): node 0's first rank is rank 0, the
    one that stores, on the node that recorded the run."""
    if not plan.cfg.nnodes:
        return {}
    rank = plan.cfg.node_rank * int(os.environ["LOCAL_WORLD_SIZE"]) + int(os.environ["LOCAL_RANK"])
    os.environ["RANK"] = str(rank)
    return {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"])}


def _check_same_workload(plan, dist) -> None:
    """Every node must run the same workload (DDP would hang or mix different runs)."""
    from profiler.errors import ConfigError

    cfg = plan.cfg
    mine = {"preset": plan.preset.name, "scenario": cfg.scenario, "variants": plan.variants[0].name,
            "batch": plan.batch_size, "seq": plan.seq_len, "steps": cfg.steps,
            "trials": cfg.trials, "warmup": cfg.warmup_steps, "new_tokens": cfg.new_tokens,
            "seed": cfg.seed, "nproc": cfg.ranks_per_node, "nnodes": cfg.nnodes}
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    differ = sorted({k for other in every for k in mine if other[k] != mine[k]})
    if differ:
        raise ConfigError(f"the nodes were launched with different options ({', '.join(differ)}): "
                          "give every node the same bench options")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
