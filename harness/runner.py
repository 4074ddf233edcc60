"""Run benchmarks: one variant in this process, a sweep with each variant in a fresh process,
or any of them on N processes under torchrun (``--nproc``), on one node or on several
(``--nnodes``: torchrun's c10d rendezvous, launched on every node; node 0 records the run
and its global rank 0 stores it, the other nodes store nothing).

For each variant the run row is written before any work starts and closed with ``ok``,
``skipped``, ``failed`` or ``interrupted``; each write commits on its own, so an interrupted
run leaves a valid database. The plan is made here once; workers and torchrun ranks receive
it serialised (:class:`harness.plan.Plan`) and run :func:`harness.execute.execute_variant`,
the same code as a single-process run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid

import torch

from hardware_profiles.device import DeviceContext, cuda_context
from harness.execute import Observer, RunFailed, execute_variant
from harness.plan import BenchConfig, Plan, make_plan, whole_model_flops
from harness.variants import moe_model_config
from profiler.environment import collect_environment
from profiler.errors import ConfigError
from profiler.lifecycle import STOP_SIGNALS, Terminated, interrupt_reason
from profiler.measurement import summarise
from profiler.progress import decode as decode_progress
from profiler.store import Store

__all__ = ["BenchConfig", "Observer", "Plan", "RunFailed", "make_plan", "run_bench",
           "run_sweep", "summarise", "NPROC_SUPPORT"]

#: How ``--nproc N`` treats every BenchConfig field: each is honoured (the text says how) or
#: refused by :func:`check_nproc` with a reason. A test walks the bench options against it.
NPROC_SUPPORT = {
    "preset": "the same model on every rank",
    "scenario": "train runs under DistributedDataParallel; prefill and decode run one "
                "replica per rank (data parallel, no gradient sync)",
    "variants": "each variant is one torchrun launch of N ranks",
    "batch_size": "per rank",
    "seq_len": "per rank",
    "new_tokens": "per rank",
    "steps": "the same count on every rank",
    "trials": "windows, each gathered from every rank at its edges; no windows are added for "
              "noise (every rank must take the same steps)",
    "warmup_steps": "on every rank",
    "target_window_s": "steps sized from the slowest rank's warm-up; windows are not "
                       "lengthened step by step (DDP's collectives need equal step counts)",
    "attention_convention": "as for one process",
    "device": "cuda: one GPU per rank (N must not exceed the GPUs torch sees); cpu: N "
              "processes with gloo, sharing the cores",
    "seed": "the same weights on every rank, a different data stream per rank",
    "cpu_tdp_w": "the estimate meter of every rank",
    "profile_files": "the plan's profiles, on every rank",
    "idle_s": "every rank measures its own device's idle power; the node sums distinct devices",
    "cooldown_s": "on every rank",
    "quality": "each rank checks its own replica; rank 0's verdict is stored",
    "tolerance": "as for one process",
    "nproc": "the number of ranks",
    "model_file": "the same model file on every rank (the parent reads it once into the plan)",
    "layers": "the same slice on every rank",
    "prometheus_port": "each rank serves its own rank rows on PORT + its local rank; rank 0 "
                       "also the node (and cluster) rows",
    "pushgateway": "every rank pushes its rows, grouped by run id",
    "nnodes": "torchrun's c10d rendezvous over M nodes, --nproc ranks on each (default 1); "
              "rank 0 of node 0 stores a cluster row, a node row per host and the rank rows",
    "node_rank": "this node's place: global rank = node rank x ranks per node + local rank, "
                 "so node 0's first rank stores",
    "rdzv_endpoint": "the rendezvous endpoint, the same on every node",
    "rdzv_id": "the rendezvous id, the same on every node (each variant adds its index)",
}


def check_nproc(plan: Plan) -> None:
    """Refuse, before any rank is launched, what N processes cannot honour."""
    n = plan.cfg.ranks_per_node
    if plan.ctx.type == "cuda" and n > torch.cuda.device_count():
        raise ConfigError(f"--nproc {n} needs {n} GPUs; torch sees {torch.cuda.device_count()}: "
                          f"use --nproc {torch.cuda.device_count()} or fewer")


def run_sweep(cfg: BenchConfig, store: Store, observer: Observer | None = None,
              command: str = "", device: DeviceContext | None = None) -> list[dict]:
    """Run every variant of ``cfg``; returns the stored runs, in order, with their results.

    One variant runs in this process; several run each in a fresh process (torchao and
    torch.compile change global state), with the same seeded weights and data. With
    ``cfg.nproc``, each variant runs on that many torchrun ranks.
    """
    observer = observer or Observer()
    plan = make_plan(cfg, device)
    if cfg.ranks_per_node:
        check_nproc(plan)
    if cfg.node_rank:
        return _run_other_node(plan, store, observer)
    env = collect_environment(plan.ctx.type)
    sweep_id = uuid.uuid4().hex  # the runs of one sweep compare with each other by default
    runs = []
    for i, variant in enumerate(plan.variants):
        one = plan.for_variant(variant)
        run_id = _start_run(store, one, env, command, sweep_id)
        try:
            observer.started(run_id, store.get_run(run_id)["config"])
            if cfg.ranks_per_node:
                observer.progress("variants", i, len(plan.variants))
                _launch(store, run_id, one, _torchrun(cfg, i), _rank_devices(one), observer)
            elif len(plan.variants) == 1:
                execute_variant(store, run_id, one, observer)
            else:
                observer.progress("variants", i, len(plan.variants))
                _launch(store, run_id, one, [sys.executable, "-m", "harness.worker"],
                        observer=observer)
        except KeyboardInterrupt as e:  # between the steps above: never left running
            if store.get_run(run_id)["status"] == "running":
                store.finish_run(run_id, "interrupted", interrupt_reason(e))
            raise
        runs.append(store.get_run(run_id) | {"results": store.results(run_id)})
    if len(plan.variants) > 1 or cfg.ranks_per_node:
        observer.progress("variants", len(plan.variants), len(plan.variants))
    return runs


def run_bench(cfg: BenchConfig, store: Store, observer: Observer | None = None,
              command: str = "", device: DeviceContext | None = None) -> dict:
    """Run a single-variant benchmark and return its stored run."""
    if len(cfg.variants) > 1:
        raise ConfigError("run_bench runs one variant: use run_sweep for several")
    return run_sweep(cfg, store, observer, command, device)[0]


def _start_run(store: Store, plan: Plan, env: dict, command: str, sweep_id: str) -> str:
    ctx, cfg, variant = plan.ctx, plan.cfg, plan.variants[0]
    config = {**cfg.to_json(), "preset": plan.preset.name, "preset_reason": plan.preset_reason,
              "batch_size": plan.batch_size, "seq_len": plan.seq_len,
              "variant": variant.to_dict(), "reference_precision": plan.reference_precision,
              "model": moe_model_config(plan.preset.model, variant).to_dict(),
              "model_source": plan.preset.source, "whole_model_layers": plan.preset.full_layers,
              "model_description": plan.preset.description,
              "model_differences": list(plan.preset.differences),
              "device": ctx.describe(), "sweep_id": sweep_id,
              "world_size": (cfg.ranks_per_node or 1) * (cfg.nnodes or 1), "nodes": cfg.nnodes or 1,
              "batch_reason": plan.batch_reason, "seq_len_reason": plan.seq_len_reason,
              "whole_model": whole_model_flops(plan)}
    return store.start_run(
        scenario=cfg.scenario, preset=plan.preset.name, variant=variant.name, device=ctx.name,
        device_type=ctx.type, attention_convention=cfg.attention_convention, config=config,
        environment=env, command=command)


def _run_other_node(plan: Plan, store: Store, observer: Observer) -> list[dict]:
    """A node other than node 0: run its ranks of every variant; node 0 records and stores."""
    for i, variant in enumerate(plan.variants):
        observer.progress("variants", i, len(plan.variants))
        one = plan.for_variant(variant)
        _launch(store, None, one, _torchrun(plan.cfg, i), _rank_devices(one))
    observer.progress("variants", len(plan.variants), len(plan.variants))
    return []


def _torchrun(cfg: BenchConfig, index: int = 0) -> list[str]:
    """torchrun: standalone on one node, or the c10d rendezvous of ``cfg.nnodes`` nodes (one
    rendezvous per variant of a sweep)."""
    nodes = ["--standalone"] if not cfg.nnodes else [
        "--nnodes", str(cfg.nnodes), "--rdzv-backend", "c10d",
        "--rdzv-endpoint", cfg.rdzv_endpoint, "--rdzv-id", f"{cfg.rdzv_id or 'etameter'}-{index}"]
    return [sys.executable, "-m", "torch.distributed.run", *nodes,
            "--nproc-per-node", str(cfg.ranks_per_node), "-m", "harness.worker"]


def _rank_devices(plan: Plan) -> list[dict]:
    """The device of every local rank, resolved here: GPU i for rank i, or the shared CPU."""
    n = plan.cfg.ranks_per_node
    if plan.ctx.type != "cuda":
        return [plan.ctx.to_spec()] * n
    return [cuda_context(i, plan.ctx.profiles).to_spec() for i in range(n)]


def _relay(lines, log, observer: Observer) -> None:
    """Pass the progress lines of a worker's output to the observer, the rest to the log."""
    for line in lines:
        event = decode_progress(line)
        if event is None:
            log.write(line)
        else:
            observer.progress(*event)


def _launch(store: Store, run_id: str | None, plan: Plan, argv: list[str],
            rank_devices: list[dict] | None = None, observer: Observer | None = None) -> None:
    """Run ``argv + [SPEC]`` (a worker, or torchrun of workers) on the serialised plan and wait,
    passing the progress lines of their output to ``observer``; a run the processes leave ``running`` is marked failed with their output.

    The worker runs in its own process group and dies with this process
    (``profiler.lifecycle.die_with_parent``); when this process is interrupted (Ctrl-C,
    SIGTERM, SIGHUP) it passes the signal on, waits for the worker to record the ending, and
    kills the group if it does not end in time. Without a run (a node other than node 0) a
    failed launch raises RunFailed with the output."""
    spec = {"plan": plan.to_json(), "run_id": run_id, "db": store.path,
            "rank_devices": rank_devices}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([*argv, spec_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    try:
        _relay(proc.stdout, log, observer or Observer())
        returncode = proc.wait()
    except KeyboardInterrupt as e:
        _stop(proc, e)
        if run_id is not None and store.get_run(run_id)["status"] == "running":
            store.finish_run(run_id, "interrupted", interrupt_reason(e))
        raise
    finally:
        proc.stdout.close()
        os.unlink(spec_path)
        _kill_group(proc)  # anything the worker started and left behind
    if run_id is None:
        if returncode != 0:
            log.seek(0)
            raise RunFailed(f"node {plan.cfg.node_rank}: torchrun exited with code {returncode}: "
                            f"{log.read()[-2000:].strip()}")
        return
    if store.get_run(run_id)["status"] == "running":
        stopped = _stop_signal(returncode)
        if stopped:
            store.finish_run(run_id, "interrupted", f"interrupted: the worker was stopped by "
                                                    f"{stopped} before it recorded an ending")
            return
        log.seek(0)
        tail = log.read()[-2000:].strip()
        store.finish_run(run_id, "failed", f"the worker process exited with code {returncode} "
                                           f"without recording a result: {tail}")


def _stop_signal(returncode: int) -> str | None:
    """The stop signal (SIGINT, SIGTERM, SIGHUP) a worker's exit code says it ended by."""
    for sig in (signal.SIGINT, *STOP_SIGNALS):
        if returncode in (-sig, 128 + sig):
            return signal.Signals(sig).name
    return None


#: How long an interrupted worker has to record its ending before its group is killed.
STOP_GRACE_S = 30.0


def _stop(proc: subprocess.Popen, exc: BaseException) -> None:
    """Pass an interruption on to the worker (the same signal), wait, then kill its group."""
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        _kill_group(proc)
        proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
