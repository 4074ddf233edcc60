"""The MFU calculator reproduces the published cases of theory.md.

Published MFUs are truncated to one decimal: MT-NLG computes to 30.27% (29.77% with 6N
alone) and is published as 30.2% (29.7%), so the checks allow 0.001.
"""

import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.errors import ConfigError
from profiler.flops import ModelShape
from profiler.mfu_calculator import ModelSpec, compute_mfu

PALM = ModelSpec.from_params(540.35e9, n_layers=118, n_heads=48, head_dim=256)
MTNLG = ModelSpec.from_params(530e9, n_layers=105, n_heads=160, head_dim=128)  # H*Q = 20480


def test_palm_540b():
    r = compute_mfu(PALM, seq_len=2048, tokens_per_s=238.3e3, devices=6144,
                    peak_flops_per_s=275e12, peak_source="test")
    assert r.flops_per_token == pytest.approx(3.278e12, rel=5e-4)
    assert r.mfu == pytest.approx(0.462, abs=0.001)
    assert r.mfu_without_attention == pytest.approx(0.457, abs=0.001)


def test_mt_nlg_530b():
    r = compute_mfu(MTNLG, seq_len=2048, tokens_per_s=1920 * 2048 / 60.1, devices=2240,
                    peak_flops_per_s=312e12, peak_source="test")
    assert r.mfu == pytest.approx(0.302, abs=0.001)
    assert r.mfu_without_attention == pytest.approx(0.297, abs=0.001)


def test_causal_convention_lowers_mfu_by_half_the_attention_term():
    full = compute_mfu(PALM, seq_len=2048, tokens_per_s=1e5, devices=1, peak_flops_per_s=1e18,
                       peak_source="t")
    causal = compute_mfu(PALM, seq_len=2048, tokens_per_s=1e5, devices=1,
                         peak_flops_per_s=1e18, peak_source="t", convention="causal")
    attention = full.flops_per_token - full.flops_per_token_without_attention
    assert full.flops_per_token - causal.flops_per_token == pytest.approx(attention / 2)
    assert causal.to_dict()["attention_convention"] == "causal"


def test_shape_mode_derives_n_from_the_shape():
    shape = ModelShape(n_layers=2, d_model=64, n_heads=4, vocab_size=512, ffn_hidden=256)
    spec = ModelSpec.from_shape(shape)
    assert spec.n_params == 131072  # hand count in test_flops.py
    assert spec.attention_width == 64


def test_invalid_inputs():
    with pytest.raises(ConfigError, match="--devices"):
        compute_mfu(PALM, seq_len=2048, tokens_per_s=1, devices=0, peak_flops_per_s=1,
                    peak_source="t")
    with pytest.raises(ConfigError, match="--params"):
        ModelSpec.from_params(-1, 1, 1, 1)


def run(*args):
    return CliRunner().invoke(cli, ["mfu", *args])


def test_acceptance_command():
    result = run("--params", "540.35e9", "--layers", "118", "--heads", "48", "--head-dim",
                 "256", "--seq", "2048", "--tokens-per-s", "238.3e3", "--devices", "6144",
                 "--peak-tflops", "275", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mfu"] == pytest.approx(0.462, abs=0.001)
    assert doc["mfu_without_attention"] == pytest.approx(0.457, abs=0.001)
    assert doc["attention_convention"] == "full"


def test_device_lookup_and_step_throughput():
    result = run("--params", "530e9", "--layers", "105", "--heads", "160", "--head-dim", "128",
                 "--seq", "2048", "--tokens-per-step", str(1920 * 2048), "--step-time-s",
                 "60.1", "--devices", "2240", "--device", "NVIDIA A100-SXM4-80GB", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["peak_flops_per_s"] == 312e12
    assert doc["mfu"] == pytest.approx(0.302, abs=0.001)


def test_shape_and_preset_modes():
    shape = run("--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "512", "--seq",
                "64", "--tokens-per-s", "1000", "--peak-tflops", "1", "--json")
    preset = run("--preset", "tiny", "--seq", "64", "--tokens-per-s", "1000",
                 "--peak-tflops", "1", "--json")
    assert json.loads(shape.stdout)["flops_per_token"] == 884736
    assert json.loads(preset.stdout)["flops_per_token"] == 884736


@pytest.mark.parametrize("args, message", [
    (["--device", "H100"], "no profile for device 'H100'"),
    (["--device", "NVIDIA L40"], "no profile for device"),
    ([], "--peak-tflops X or --device NAME"),
    (["--peak-tflops", "1", "--device", "nvidia-l4"], "exactly one"),
])
def test_peak_errors(args, message):
    result = run("--preset", "tiny", "--seq", "64", "--tokens-per-s", "1", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_model_errors():
    result = run("--params", "1e9", "--seq", "64", "--tokens-per-s", "1", "--peak-tflops", "1")
    assert "--params also needs --layers, --heads, --head-dim" in result.output
    result = run("--preset", "tiny", "--params", "1e9", "--seq", "64", "--tokens-per-s", "1",
                 "--peak-tflops", "1")
    assert "exactly one way" in result.output


def test_flops_command_json():
    result = CliRunner().invoke(cli, ["flops", "--preset", "tiny", "--json"])
    doc = json.loads(result.stdout)
    assert doc["logical_flops_per_token"] == 884736
    assert doc["logical_flops_per_step"] == 884736 * 256
    assert doc["per_token"]["attention_scores"] == 3 * 32768
    causal = json.loads(CliRunner().invoke(
        cli, ["flops", "--preset", "tiny", "--attention", "causal", "--json"]).stdout)
    assert causal["attention_convention"] == "causal"
    assert causal["per_token"]["attention_scores"] == 3 * 16384
    decode = json.loads(CliRunner().invoke(
        cli, ["flops", "--preset", "tiny", "--scenario", "decode", "--seq", "10", "--new-tokens",
              "3", "--json"]).stdout)
    assert decode["tokens_per_step"] == 4 * 3
    assert any("decode" in n for n in decode["notes"])
