"""The multi-node bench options from the environment Slurm sets in a job step.

``etameter bench --slurm`` under ``srun`` (one task per node) takes ``--nnodes`` from
``SLURM_NNODES`` (or ``SLURM_JOB_NUM_NODES``), ``--node-rank`` from ``SLURM_NODEID``,
``--rdzv-id`` from ``SLURM_JOB_ID`` and ``--rdzv-endpoint`` from ``$MASTER_ADDR`` or the first
host of ``SLURM_STEP_NODELIST`` (``SLURM_JOB_NODELIST``) with ``$MASTER_PORT`` (default
29500). Options given on the command line win.
"""

from __future__ import annotations

import re

from profiler.errors import ConfigError

DEFAULT_PORT = 29500


def first_host(nodelist: str) -> str:
    """The first host of a Slurm host list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    match = re.match(r"\s*([^,\[\s]+)(?:\[([^\]]+)\])?", nodelist or "")
    if not match:
        raise ConfigError(f"cannot read a host from the Slurm node list {nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_options(environ) -> dict:
    """nnodes, node_rank, rdzv_endpoint and rdzv_id from Slurm's variables."""
    missing = [v for v in ("SLURM_JOB_ID", "SLURM_NODEID") if v not in environ]
    nnodes = environ.get("SLURM_NNODES") or environ.get("SLURM_JOB_NUM_NODES")
    nodelist = (environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
                or environ.get("SLURM_NODELIST"))
    if nnodes is None:
        missing.append("SLURM_NNODES")
    if nodelist is None and not environ.get("MASTER_ADDR"):
        missing.append("SLURM_STEP_NODELIST")
    if missing:
        raise ConfigError(f"--slurm: {', '.join(missing)} not set: run it inside a Slurm job "
                          "step (srun), or give --nnodes, --node-rank and --rdzv-endpoint")
    try:
        count, node, port = int(nnodes), int(environ["SLURM_NODEID"]), int(
            environ.get("MASTER_PORT") or DEFAULT_PORT)
    except ValueError as e:
        raise ConfigError(f"--slurm: a Slurm variable is not a number ({e})") from None
    host = environ.get("MASTER_ADDR") or first_host(nodelist)
    return {"nnodes": count, "node_rank": node, "rdzv_endpoint": f"{host}:{port}",
            "rdzv_id": f"slurm-{environ['SLURM_JOB_ID']}"}
