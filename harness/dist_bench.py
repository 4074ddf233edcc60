"""A node benchmark under torchrun: every rank trains the reference model with DDP, meters
its own device, and rank 0 stores the node-level result (profiler.tracker, .distributed).

Launched by ``etameter bench --nproc N``, which runs
``python -m torch.distributed.run --standalone --nproc-per-node N -m harness.dist_bench ...``.
Rank 0 prints one line ``ETAMETER_RESULT <json>`` on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

RESULT_PREFIX = "ETAMETER_RESULT "


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m harness.dist_bench")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch", type=int, default=None, help="batch size per rank")
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--steps", type=int, default=10, help="steps per window")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--cpu-tdp-w", type=float, default=None)
    p.add_argument("--db", required=True)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from harness.model import Transformer
    from harness.presets import get_preset
    from profiler.tracker import Tracker

    args = parse(argv)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        # Ranks share the CPU: split its cores rather than oversubscribe them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    preset = get_preset(args.preset)
    batch, seq = args.batch or preset.batch_size, args.seq or preset.seq_len
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = Transformer(preset.model).to(device)
    ddp = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=use_cuda or None)
    precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)  # each rank its own data
    data = torch.randint(0, preset.model.vocab_size, (4, batch, seq + 1), generator=gen).to(device)

    def step(i):
        x = data[i % 4]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = ddp(x[:, :-1], x[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(i)
    tracker = Tracker(model_config=preset.model, seq_len=seq, precision=precision, device=device,
                      window_steps=args.steps, store=args.db if rank == 0 else None,
                      name=f"{preset.name}-ddp{world}", cpu_tdp_w=args.cpu_tdp_w,
                      printer=lambda text: print(text, file=sys.stderr, flush=True))
    try:
        for i in range(args.steps * args.windows):
            step(i)
            tracker.step(tokens=batch * seq)
    except BaseException as e:
        tracker.close("interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                      f"{type(e).__name__}: {e}")
        raise
    summary = tracker.close()
    if rank == 0:
        print(RESULT_PREFIX + json.dumps({"run_id": tracker.run_id, "world_size": world,
                                          "preset": preset.name, "batch_per_rank": batch,
                                          "seq_len": seq, "summary": summary,
                                          "windows": tracker.windows}, default=str), flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
