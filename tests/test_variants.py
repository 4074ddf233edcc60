"""Variants: parsing, capability checks on the CPU, the quality guard, failure isolation."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from harness.variants import (Converter, apply_variant, converters, global_settings,
                              parse_variant, register, skip_reason, unconverted_linears,
                              unregister)
from profiler.errors import ConfigError

CPU = torch.device("cpu")


@pytest.mark.parametrize("text, scenario, device, name", [
    ("bf16+compile+sdpa-flash", "train", "cuda", "bf16+sdpa-flash+compile"),
    ("compile+bf16", "prefill", "cpu", "bf16+compile"),
    ("int8-dynamic", "prefill", "cuda", "bf16+int8-dynamic"),
    ("int8-dynamic", "prefill", "cpu", "fp32+int8-dynamic"),
    ("fp8", "train", "cuda", "bf16-autocast+fp8-tensorwise"),
    ("fp8", "decode", "cuda", "bf16+fp8"),
    ("fp8-rowwise", "train", "cuda", "bf16-autocast+fp8-rowwise"),
    ("moe", "train", "cpu", "fp32+moe-8-2"),
    ("moe-4-1+sdpa-math", "prefill", "cpu", "fp32+moe-4-1+sdpa-math"),
    ("2:4", "prefill", "cuda", "bf16+2:4"),
    ("sdpa-math", "train", "cuda", "bf16-autocast+sdpa-math"),
])
def test_parse_canonical_names(text, scenario, device, name):
    assert parse_variant(text, scenario, device).name == name


def test_compute_precision_is_the_variant_peak():
    assert parse_variant("fp8", "train", "cuda").compute_precision == "fp8"
    assert parse_variant("int8-dynamic", "prefill", "cuda").compute_precision == "int8"
    assert parse_variant("int8-weight-only", "prefill", "cuda").compute_precision == "bf16"
    assert parse_variant("2:4", "prefill", "cuda").compute_precision == "bf16"  # dense peak
    assert parse_variant("tf32", "train", "cuda").compute_precision == "tf32"


@pytest.mark.parametrize("text, message", [
    ("bf16+fp32", "two precision choices"),
    ("int8-weight-only+int8-dynamic", "two quant choices"),
    ("fp9", "unknown variant part 'fp9'"),
    ("bf16++compile", "empty part"),
    ("moe-2-4", "top-k cannot exceed"),
])
def test_parse_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_variant(text, "train", "cpu")


@pytest.mark.parametrize("text, scenario, reason", [
    ("tf32", "train", "tf32 needs an NVIDIA GPU (compute capability 8.0 or newer); this run is on the CPU"),
    ("fp8", "train", "fp8 needs an NVIDIA GPU (compute capability 8.9"),
    ("fp8", "prefill", "fp8 needs an NVIDIA GPU (compute capability 8.9"),
    ("2:4", "prefill", "sparsity needs an NVIDIA GPU (compute capability 8.0"),
    ("int8-weight-only", "train", "inference variant"),
    ("fp16", "train", "inference precision"),
    ("sdpa-cudnn", "prefill", "sdpa-cudnn cannot run here"),
])
def test_skip_reasons_on_the_cpu(text, scenario, reason):
    variant = parse_variant(text, scenario, "cpu")
    assert reason in skip_reason(variant, scenario, CPU)


def test_an_old_gpu_is_told_its_capability(monkeypatch):
    """On CUDA the reason names the capability needed and the one the GPU has."""
    import harness.variants.base as base
    from harness.variants.base import gpu_reason

    monkeypatch.setattr(base, "capability", lambda device: (8, 0))
    assert gpu_reason("fp8", (8, 9), torch.device("cuda")) == \
        "fp8 needs compute capability 8.9 or newer; this GPU has 8.0"
    assert gpu_reason("tf32", (8, 0), torch.device("cuda")) is None


def test_missing_torchao_is_named_with_the_install_hint(monkeypatch):
    import harness.variants as v
    import harness.variants.torchao_support as torchao_support

    monkeypatch.setattr(torchao_support, "has_torchao", lambda: False)
    variant = parse_variant("int8-weight-only", "prefill", "cpu")
    assert skip_reason(variant, "prefill", CPU) == v.TORCHAO_HINT
    assert "pip install 'etameter[variants]'" in v.TORCHAO_HINT


class _Int4Plugin(Converter):
    """A plugin kind with its own compute precision and skip reason."""

    kind = "test-int4"
    tokens = ("test-int4", "test-int4-slow")
    compute_precisions = {"test-int4": "int4"}

    def skip_reason(self, variant, scenario, device):
        return "test-int4 needs a device that is not a CPU" if device.type == "cpu" else None

    def apply(self, model, variant, scenario, device):
        return {"test_int4": True}


@pytest.fixture
def int4_plugin():
    register(_Int4Plugin)
    yield
    unregister("test-int4")


def test_a_plugin_converter_sets_compute_precision_and_skip_reason(int4_plugin):
    variant = parse_variant("test-int4+bf16", "prefill", "cpu")
    assert variant.name == "bf16+test-int4"  # plugin kinds come after the built-in kinds
    assert variant.compute_precision == "int4"
    assert variant.to_dict()["custom"] == "test-int4"
    assert skip_reason(variant, "prefill", CPU) == "test-int4 needs a device that is not a CPU"
    assert apply_variant(nn.Linear(4, 4), variant, "prefill", CPU) == {"test_int4": True}
    # A token without a declared compute precision keeps the base precision's.
    assert parse_variant("test-int4-slow", "prefill", "cpu").compute_precision == "fp32"
    # An override of a built-in kind comes first in the order of kinds.
    assert parse_variant("fp8+test-int4", "train", "cuda").compute_precision == "fp8"


def test_every_compute_precision_is_a_profile_precision():
    from hardware_profiles.profiles import PRECISIONS
    from harness.variants.precision import TABLE

    assert {p.compute for p in TABLE.values()} <= set(PRECISIONS)
    for converter in converters():
        assert set(converter.compute_precisions.values()) <= set(PRECISIONS), converter.kind
    assert {c.kind for c in converters()} >= {"precision", "fp8", "quant", "sparsity", "moe",
                                               "attention", "compile"}


def test_a_compute_precision_outside_the_profile_list_is_refused():
    class Fp7(_Int4Plugin):
        kind = "test-fp7"
        tokens = ("test-fp7",)
        compute_precisions = {"test-fp7": "fp7"}

    with pytest.raises(ConfigError, match="'fp7' is not one of fp64, fp32, tf32, bf16"):
        register(Fp7)
    assert "test-fp7" not in {c.kind for c in converters()}


def test_a_plugin_cannot_take_a_built_in_kind_or_token():
    class Taken(_Int4Plugin):
        kind = "test-taken"
        tokens = ("bf16",)

    with pytest.raises(ConfigError, match="already belongs to kind 'precision'"):
        register(Taken)
    with pytest.raises(ConfigError, match="'precision' is already registered"):
        register(type("Again", (_Int4Plugin,), {"kind": "precision"}))


def test_an_unknown_token_lists_every_kind_including_plugins(int4_plugin):
    with pytest.raises(ConfigError) as e:
        parse_variant("fp9", "train", "cpu")
    message = str(e.value)
    for token in ("fp32", "fp16", "fp8-rowwise", "int8-dynamic", "2:4", "moe-E-K", "sdpa-cudnn",
                  "compile-max-autotune", "test-int4", "test-int4-slow"):
        assert token in message


def test_importing_variants_does_no_work():
    code = ("import os, sys; os.environ['ETAMETER_VARIANT_PLUGINS'] = 'tests.broken_variant'; "
            "import harness.variants; "
            "assert 'torchao' not in sys.modules and 'tests.broken_variant' not in sys.modules; "
            "assert not __import__('torch').cuda.is_initialized()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tf32_is_enabled_for_the_tf32_variant_only():
    saved = torch.backends.cuda.matmul.allow_tf32
    with global_settings(parse_variant("tf32", "train", "cuda")):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    with global_settings(parse_variant("bf16", "train", "cuda")):
        assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 == saved


def test_unconverted_layers_are_detected():
    pytest.importorskip("torchao")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    names = ["0", "1"]
    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: fqn == "0")
    assert unconverted_linears(model, names) == ["1"]


def sweep(db_path, scenario, variants, *extra, plugins=False):
    env = dict(os.environ)
    if plugins:
        env["ETAMETER_VARIANT_PLUGINS"] = "tests.broken_variant"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--scenario", scenario,
         "--steps", "2", "--trials", "1", "--warmup", "1", "--variants", ",".join(variants),
         "--json", "--db", db_path, *extra],
        capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


INFERENCE_VARIANTS = ["fp32", "bf16", "fp16", "bf16-autocast", "fp16-autocast", "tf32",
                      "int8-weight-only", "int8-dynamic", "int4-weight-only", "fp8", "2:4", "moe",
                      "fp32+sdpa-math", "fp32+sdpa-flash", "fp32+sdpa-efficient", "fp32+sdpa-cudnn"]
TRAIN_VARIANTS = ["fp32", "bf16-autocast", "bf16", "fp16-autocast", "fp8-tensorwise",
                  "fp8-rowwise", "2:4", "moe-4-2", "int8-dynamic"]


def _every_variant_runs_or_is_skipped(doc, variants):
    rows = doc["comparison"]
    assert len(rows) == len(variants)
    for row in rows:
        assert row["status"] in ("ok", "skipped"), row
        if row["status"] == "skipped":
            assert row["reason"], row
        else:
            assert row["tokens_per_s"] > 0 and row["quality"] is not None
    assert rows[0]["status"] == "ok" and rows[0]["speedup"] == 1.0


@pytest.mark.slow
def test_every_inference_variant_runs_or_is_skipped_with_a_reason(db_path):
    doc = sweep(db_path, "prefill", INFERENCE_VARIANTS)
    _every_variant_runs_or_is_skipped(doc, INFERENCE_VARIANTS)
    by_name = {r["variant"]: r for r in doc["comparison"]}
    assert by_name["fp32+int8-weight-only"]["status"] == "ok"
    assert by_name["fp32+int8-weight-only"]["quality_ok"] is True
    assert "8.9" in by_name["fp32+fp8"]["reason"]


@pytest.mark.slow
def test_every_training_variant_runs_or_is_skipped_with_a_reason(db_path):
    doc = sweep(db_path, "train", TRAIN_VARIANTS)
    _every_variant_runs_or_is_skipped(doc, TRAIN_VARIANTS)
    by_name = {r["variant"]: r for r in doc["comparison"]}
    assert by_name["bf16-autocast"]["quality"]["kind"] == "loss"
    assert "inference variant" in by_name["fp32+int8-dynamic"]["reason"]


@pytest.mark.slow
def test_quality_guard_and_failure_isolation(db_path):
    variants = ["fp32", "fp32+broken-noise", "fp32+crash", "bf16-autocast"]
    doc = sweep(db_path, "prefill", variants, plugins=True)
    rows = {r["variant"]: r for r in doc["comparison"]}
    assert rows["fp32+broken-noise"]["status"] == "ok"
    assert rows["fp32+broken-noise"]["quality_ok"] is False
    assert "outside tolerance" in rows["fp32+broken-noise"]["quality"]["reason"]
    assert rows["fp32+crash"]["status"] == "failed"
    assert "broken on purpose" in rows["fp32+crash"]["reason"]
    assert rows["bf16-autocast"]["status"] == "ok"  # the sweep went on
    assert rows["bf16-autocast"]["quality_ok"] is True
    # Flagged wherever reported: the run table too.
    from click.testing import CliRunner

    from harness.cli import cli
    table = CliRunner().invoke(cli, ["report", "--db", db_path]).stdout
    assert "FLAGGED" in table and "quality outside tolerance" in table


@pytest.mark.slow
def test_training_quality_guard_flags_a_broken_variant(db_path):
    doc = sweep(db_path, "train", ["fp32", "fp32+broken-noise"], plugins=True)
    broken = doc["comparison"][1]
    assert broken["quality_ok"] is False and broken["quality"]["kind"] == "loss"


@pytest.mark.slow
def test_decode_with_compile_reports_compile_time(db_path):
    doc = sweep(db_path, "decode", ["fp32", "fp32+compile"], "--seq", "16", "--new-tokens", "4")
    compiled = doc["comparison"][1]
    assert compiled["status"] == "ok" and compiled["compile_time_s"] > 0
    assert compiled["quality_ok"] is True
