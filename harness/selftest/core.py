"""The budgeted run: phases in order of value, each with an estimated cost; a phase that does
not fit what is left of the budget is skipped with that reason; the summary is rewritten
after every phase (and marks the phase in progress), so a kill keeps every finished phase."""

from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.selftest.children import TERM_GRACE_S, ChildTimeout
from harness.selftest.summary import CONSISTENCY_NOTE, ESTIMATE_NOTE, write_summary
from profiler.errors import ConfigError

DEFAULT_BUDGET_S = 300.0
#: Seconds kept back from a phase's timeout for writing the summary and for the child's
#: process group to end after SIGTERM (children.TERM_GRACE_S).
MARGIN_S = 3.0 + TERM_GRACE_S


class PhaseSkipped(Exception):
    """A phase that cannot run here; the message is the reason."""


class Interrupted(BaseException):
    """SIGTERM (a job step's time limit, a scheduler) or Ctrl-C while a phase ran."""


@dataclass(frozen=True)
class SelftestConfig:
    out_dir: str | None
    gpu: bool = True  # False: every phase on the CPU at tiny sizes (CI's end-to-end check)
    budget_s: float = DEFAULT_BUDGET_S
    with_tests: bool = False
    db_path: str | None = None  # default: OUT/selftest.db

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise ConfigError(f"--budget-s must be positive, got {self.budget_s}")

    @property
    def dry_run(self) -> bool:  # the CPU mode's sizes (kept for the phases' size tables)
        return not self.gpu

    @property
    def device(self) -> str:
        return "cuda" if self.gpu else "cpu"

    @property
    def db(self) -> str:
        return self.db_path or str(Path(self.out_dir) / "selftest.db")


@dataclass(frozen=True)
class Phase:
    """One phase: its name, what it checks, its estimated cost (GPU, CPU) and its function
    ``run(ctx) -> dict``. ``gpu_only`` phases are skipped on the CPU; ``test_suite`` ones
    run only with --with-tests."""

    name: str
    what: str
    estimate_s: float
    cpu_estimate_s: float
    run: Callable[["PhaseContext"], dict]
    gpu_only: bool = False
    test_suite: bool = False

    def estimate(self, cfg: SelftestConfig) -> float:
        return self.estimate_s if cfg.gpu else self.cpu_estimate_s


@dataclass
class PhaseContext:
    """What a phase receives: the config, the state earlier phases left, the time it has."""

    cfg: SelftestConfig
    state: dict
    deadline: float  # on the selftest's clock
    clock: Callable[[], float]
    child: list = field(default_factory=lambda: [None])  # the running child, if any

    def time_left_s(self) -> float:
        """Seconds this phase may still take (its children's timeout)."""
        return self.deadline - self.clock() - MARGIN_S

    def on_child(self, proc) -> None:
        self.child[0] = proc


def static_reason(phase: Phase, cfg: SelftestConfig) -> str | None:
    """Why a phase never runs in this mode, whatever the budget."""
    if phase.gpu_only and not cfg.gpu:
        return "needs a CUDA GPU (this is the --cpu run)"
    if phase.test_suite and not cfg.with_tests:
        return "not part of the budgeted run: add --with-tests"
    return None


def budget_reason(estimate_s: float, left_s: float, budget_s: float) -> str | None:
    """Why a phase of ``estimate_s`` does not fit ``left_s`` seconds, or None if it does."""
    if estimate_s <= left_s:
        return None
    return (f"does not fit the budget: estimated {estimate_s:.0f} s, {max(left_s, 0):.0f} s "
            f"left of --budget-s {budget_s:.0f}")


def plan(phases: list[Phase], cfg: SelftestConfig) -> dict:
    """The plan ``--dry-run`` prints: each phase with its estimate and whether it would run
    (assuming every phase before it takes its estimate)."""
    rows, used = [], 0.0
    for p in phases:
        est = p.estimate(cfg)
        reason = static_reason(p, cfg) or budget_reason(est, cfg.budget_s - used, cfg.budget_s)
        if reason is None:
            used += est
        rows.append({"name": p.name, "what": p.what, "estimate_s": est,
                     "runs": reason is None, "reason": reason,
                     "cumulative_s": used if reason is None else None})
    return {"mode": mode_of(cfg), "budget_s": cfg.budget_s, "planned_s": used,
            "with_tests": cfg.with_tests, "estimate_note": ESTIMATE_NOTE, "phases": rows}


def mode_of(cfg: SelftestConfig) -> str:
    return "gpu" if cfg.gpu else "cpu, tiny sizes"


def _on_sigterm(signum, frame):
    raise Interrupted(f"interrupted by signal {signum}")


def run_phases(cfg: SelftestConfig, phases: list[Phase], log: Callable[[str], None],
               clock: Callable[[], float] = time.monotonic, describe: Callable[[dict], dict]
               = lambda state: state.get("device")) -> dict:
    """Run ``phases`` within ``cfg.budget_s``; the summary (also written to ``cfg.out_dir``
    after every phase). A phase's children are killed when the budget runs out."""
    prepare_out(cfg.out_dir)
    import torch

    state: dict = {}
    t_start = clock()
    deadline = t_start + cfg.budget_s
    rows = [{"name": p.name, "what": p.what, "estimate_s": p.estimate(cfg), "status": "pending",
             "reason": None, "duration_s": None, "data": None} for p in phases]
    summary = {"mode": mode_of(cfg), "gpu": cfg.gpu, "budget_s": cfg.budget_s,
               "with_tests": cfg.with_tests, "torch": torch.__version__, "device": None,
               "duration_s": 0.0, "ok": True, "in_progress": True,
               "consistency_note": CONSISTENCY_NOTE, "estimate_note": ESTIMATE_NOTE,
               "db": cfg.db, "phases": rows}

    def save():
        summary["duration_s"] = clock() - t_start
        summary["device"] = describe(state)
        summary["ok"] = all(r["status"] not in ("failed", "timed_out", "interrupted")
                            for r in rows)
        write_summary(cfg.out_dir, summary)

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    ctx = PhaseContext(cfg, state, deadline, clock)
    try:
        for phase, row in zip(phases, rows):
            left = deadline - clock()
            reason = static_reason(phase, cfg) or budget_reason(row["estimate_s"], left,
                                                                cfg.budget_s)
            if reason is not None:
                row.update(status="skipped", reason=reason)
                save()
                continue
            log(f"selftest: {phase.name} (estimated {row['estimate_s']:.0f} s, "
                f"{left:.0f} s left)")
            row["status"] = "running"
            save()
            t0 = clock()
            try:
                row.update(status="ok", data=phase.run(ctx))
            except PhaseSkipped as e:
                row.update(status="skipped", reason=str(e))
            except ChildTimeout as e:
                row.update(status="timed_out", reason=str(e))
            except (Interrupted, KeyboardInterrupt) as e:
                row.update(status="interrupted", reason=str(e) or "interrupted (Ctrl-C)",
                           duration_s=clock() - t0)
                raise Interrupted(row["reason"]) from None
            except Exception as e:  # a failed phase is recorded; the others still run
                row.update(status="failed", reason=f"{type(e).__name__}: {e}",
                           data={"traceback": traceback.format_exc()[-2000:]})
            row["duration_s"] = clock() - t0
            save()
    except Interrupted:
        for r in rows:
            if r["status"] == "pending":
                r.update(status="not_run", reason="the selftest was interrupted")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        summary["in_progress"] = False
        save()
    return summary


def prepare_out(out_dir: str | None) -> None:
    """Create the output folder; a clear error if it cannot be created or written."""
    if not out_dir:
        raise ConfigError("selftest needs --out DIR (or --dry-run to print the plan)")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --out {out_dir}: {e.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"--out {out_dir} is not writable: choose another folder")
