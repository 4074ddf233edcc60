"""``etameter selftest``: a budgeted, resumable check of a GPU node.

GPU time comes in short slots (a 15-minute interactive allocation, a 10-minute job step), so
the check runs its phases (:data:`PHASES`) in order of value within ``--budget-s`` seconds
(default 300): environment, detection and meters, metered idle then load, calibration
(stored, so later runs get ``mfu_vs_ceiling``), one llama-1b bf16 training run, then what the
budget still allows: fp8 against bf16 training, int8 against bf16 decode, the capability
probes of every sweep variant, then the longer phases (default runs, the variant sweep).
Each phase has an estimated cost; one that does not fit what is left is skipped with that
reason. ``summary.json`` and ``summary.md`` are rewritten after every phase, so whatever
kills the command, what was measured is kept. Phases that measure run in child processes in
their own process group, killed with it when the budget runs out. ``pytest -m gpu`` runs only
with ``--with-tests``. ``--dry-run`` prints the plan with each phase's estimate; ``--cpu``
runs every phase that does not need a GPU on the CPU at tiny sizes (CI's end-to-end check).
"""

from harness.selftest.core import (DEFAULT_BUDGET_S, Interrupted, Phase, PhaseContext,
                                   PhaseSkipped, SelftestConfig, plan, run_phases)
from harness.selftest.phases import CPU_SWEEP, PHASES, SWEEP


def run_selftest(cfg: SelftestConfig, log=lambda line: None, phases=None) -> dict:
    """Run the selftest's phases within the budget; the summary (also in ``cfg.out_dir``)."""
    if cfg.gpu:
        import torch

        if not torch.cuda.is_available():
            from profiler.errors import ConfigError

            raise ConfigError("selftest --gpu needs a CUDA device: use --cpu for the CPU "
                              "run, or --dry-run to print the plan")
    return run_phases(cfg, PHASES if phases is None else phases, log)


def metered_idle_and_load(meter, idle_s: float, load_s: float, cooldown_s: float = 0.0):
    """See harness.selftest.load (imported on use: it needs CUDA)."""
    from harness.selftest.load import metered_idle_and_load as run

    return run(meter, idle_s, load_s, cooldown_s)


def metered_matmul_load(meter, seconds: float = 10.0, n: int = 8192):
    """See harness.selftest.load."""
    from harness.selftest.load import metered_matmul_load as run

    return run(meter, seconds, n)


__all__ = ["CPU_SWEEP", "DEFAULT_BUDGET_S", "Interrupted", "PHASES", "Phase", "PhaseContext",
           "PhaseSkipped", "SWEEP", "SelftestConfig", "metered_idle_and_load",
           "metered_matmul_load", "plan", "run_phases", "run_selftest"]
