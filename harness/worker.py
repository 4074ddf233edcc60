"""Entry point of the fresh process that runs one variant of a sweep.

``python -m harness.worker SPEC.json``: the spec names the database, the run (already
recorded as running by the parent), the bench config, the variant and the sweep's reference
precision. The worker records the outcome itself; if it dies without doing so, the parent
marks the run failed with the worker's output.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from harness.runner import BenchConfig, execute_variant, make_plan
    from harness.variants import parse_variant
    from profiler.store import Store

    with open(argv[1]) as f:
        spec = json.load(f)
    cfg = BenchConfig.from_json(spec["config"])
    store = Store(spec["db"])
    plan = make_plan(cfg)
    variant = parse_variant(spec["variant"], cfg.scenario, plan.ctx.type)
    plan.variants = [variant]
    plan.reference_precision = spec["reference_precision"]
    try:
        execute_variant(store, spec["run_id"], plan, variant)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
