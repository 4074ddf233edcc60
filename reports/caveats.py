"""What a comparison verdict must say besides faster or slower: a run that failed its quality
guard, a comparison of an eager weight-only int8 decode (which says nothing about int8's
speed), and every way two variants differ besides the one being compared (fp8 on bf16
weights against bf16 autocast on fp32 master weights mixes two changes)."""

from __future__ import annotations

#: The variant fields compared, with how a difference is named.
VARIANT_FIELDS = (("precision", "precision (weights/autocast)"), ("fp8", "fp8"),
                  ("quant", "quantization"), ("sparsity", "sparsity"), ("moe", "MoE"),
                  ("attention", "attention kernel"), ("compile", "compile"))
EAGER_ONLY = ("eager-only: eager int8 weight-only dequantises every weight on every call, so "
              "this decode comparison says nothing about int8's speed (compare +compile runs)")


def _variant(run: dict) -> dict:
    return (run.get("config") or {}).get("variant") or {}


def quality_failed(run: dict) -> bool:
    """True if the run finished but failed its quality guard."""
    return run.get("status") == "ok" and run.get("quality_ok") is False


def status_label(run: dict) -> str:
    """The run's status as every status line shows it: ``ok, QUALITY FAILED`` when the
    run's result does not compute the same model."""
    return f"{run['status']}, QUALITY FAILED" if quality_failed(run) else run["status"]


def differences(run: dict, ref: dict) -> list[str]:
    """Each variant field in which ``run`` differs from the reference ``ref``."""
    a, b = _variant(run), _variant(ref)
    if not a or not b:
        return []
    out = []
    for key, label in VARIANT_FIELDS:
        if a.get(key) != b.get(key):
            out.append(f"{label}: {a.get(key) or 'none'} (reference {b.get(key) or 'none'})")
    return out


def eager_weight_only_decode(run: dict) -> bool:
    """An eager (uncompiled) int8 weight-only decode run."""
    v = _variant(run)
    return (run.get("scenario") == "decode" and v.get("quant") == "int8-weight-only"
            and not v.get("compile"))


def verdict_caveats(run: dict, ref: dict) -> list[str]:
    """The caveats a verdict of ``run`` against ``ref`` carries, most serious first."""
    if run is ref:
        return []
    out = []
    if quality_failed(run):
        reason = ((run.get("summary") or {}).get("quality") or {}).get("reason")
        out.append("QUALITY FAILED" + (f" ({reason})" if reason else ""))
    if quality_failed(ref):
        out.append(f"the reference {ref['variant']} FAILED its quality guard")
    if eager_weight_only_decode(run) or eager_weight_only_decode(ref):
        out.append(EAGER_ONLY)
    diff = differences(run, ref)
    if len(diff) > 1:
        out.append("not like with like, differs in " + "; ".join(diff))
    return out


def with_caveats(verdict: str, run: dict, ref: dict) -> str:
    """``verdict`` with its caveats: a quality failure first, then the rest after it."""
    caveats = verdict_caveats(run, ref)
    if not caveats:
        return verdict
    if caveats[0].startswith("QUALITY FAILED"):
        return f"{caveats[0]}: {verdict}" + "".join(f"; {c}" for c in caveats[1:])
    return verdict + "".join(f"; {c}" for c in caveats)
