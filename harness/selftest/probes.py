"""The capability probes of a sweep, without running it: for each ``scenario:variant``, the
skip reason the benchmark would give (the converters' checks, then their trial runs on the
device with the preset's shapes), or "runs".

``python -m harness.selftest.probes DEVICE PRESET scenario:variant...`` prints one JSON
document (the selftest's ``variant_probes`` phase runs it in a child process group).
"""

from __future__ import annotations

import json
import sys
import time


def probe_all(device: str, preset: str, items: list[str]) -> dict:
    """Each item's verdict: ``runs`` or ``skipped`` with the reason (``error`` if the variant
    does not even parse), and how long its probe took."""
    import torch

    from harness.presets import get_preset
    from harness.variants import moe_model_config, parse_variant, skip_reason
    from profiler.errors import EtameterError

    model = get_preset(preset).model
    dev = torch.device(device)
    rows = []
    for item in items:
        scenario, _, name = item.partition(":")
        t0 = time.perf_counter()
        try:
            variant = parse_variant(name, scenario, dev.type)
            reason = skip_reason(variant, scenario, dev, moe_model_config(model, variant))
            row = {"variant": variant.name, "status": "skipped" if reason else "runs",
                   "reason": reason}
        except EtameterError as e:
            row = {"variant": name, "status": "error", "reason": str(e)}
        rows.append({"scenario": scenario, **row, "probe_s": time.perf_counter() - t0})
    return {"device": device, "preset": preset, "probes": rows,
            "runs": sum(r["status"] == "runs" for r in rows),
            "skipped": sum(r["status"] == "skipped" for r in rows)}


def main(argv: list[str]) -> int:
    print(json.dumps(probe_all(argv[1], argv[2], argv[3:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
