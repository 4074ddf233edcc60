"""Faults in model files (issue 22, item 7): a key of the wrong type is refused with a typed
error naming the key, and no value is rewritten silently (0 experts per token is not 2, a RoPE
base of 0 is not the default, the string "false" is not true)."""

import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.model import ModelConfig
from harness.model_files import from_hf_config, load_model_file
from profiler.errors import ConfigError

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 256, "max_position_embeddings": 128}
MIXTRAL = LLAMA | {"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2}


def refused(data: dict, key: str) -> str:
    with pytest.raises(ConfigError) as e:
        from_hf_config(data, "m", "config.json")
    assert key in str(e.value), str(e.value)
    assert "config.json" in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("extra, key", [
    ({"rope_scaling": "linear"}, "rope_scaling"),
    ({"rope_scaling": ["linear", 2.0]}, "rope_scaling"),
    ({"partial_rotary_factor": "0.5"}, "partial_rotary_factor"),
    ({"partial_rotary_factor": 0}, "partial_rotary_factor"),
    ({"partial_rotary_factor": 1.5}, "partial_rotary_factor"),
    ({"rope_theta": 0}, "rope_theta"),
    ({"rope_theta": -1.0}, "rope_theta"),
    ({"rope_theta": "10000"}, "rope_theta"),
    ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),
    ({"tie_word_embeddings": 0}, "tie_word_embeddings"),
])
def test_llama_keys_of_the_wrong_type_are_refused(extra, key):
    refused(LLAMA | extra, key)


@pytest.mark.parametrize("extra, key", [
    ({"num_local_experts": "abc"}, "num_local_experts"),
    ({"num_local_experts": -4}, "num_local_experts"),
    ({"num_experts_per_tok": "x"}, "num_experts_per_tok"),
    ({"num_experts_per_tok": 0}, "num_experts_per_tok"),
    ({"num_experts_per_tok": 5}, "num_experts_per_tok"),
    ({"num_experts_per_tok": 1.5}, "num_experts_per_tok"),
    ({"num_experts_per_tok": None}, "num_experts_per_tok"),
])
def test_moe_keys_are_refused_not_rewritten(extra, key):
    refused(MIXTRAL | extra, key)


def test_gpt2_tie_string_is_refused():
    gpt2 = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256,
            "tie_word_embeddings": "false"}
    refused(gpt2, "tie_word_embeddings")


def test_valid_values_are_read_as_written():
    cfg, diffs = from_hf_config(LLAMA | {"rope_theta": 500000.0, "tie_word_embeddings": False,
                                         "partial_rotary_factor": 0.5,
                                         "rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
                                "m", "config.json")
    assert cfg.rope_theta == 500000.0 and cfg.tie_embeddings is False
    assert any("partial rotary (0.5)" in d for d in diffs)
    assert any("llama3" in d for d in diffs)
    moe, _ = from_hf_config(MIXTRAL | {"num_experts_per_tok": 1}, "m", "config.json")
    assert (moe.moe_experts, moe.moe_top_k) == (4, 1)
    dense, _ = from_hf_config(LLAMA | {"rope_scaling": None, "rope_theta": None}, "m", "c")
    assert dense.moe_experts == 0 and dense.rope_theta == 10000.0  # null: the default


@pytest.mark.parametrize("key, value", [("tie_embeddings", "false"), ("rope_theta", 0),
                                        ("rope_theta", "1e4"), ("moe_experts", "abc"),
                                        ("moe_top_k", 1.5), ("norm_eps", float("nan"))])
def test_etameter_model_keys_are_typed(key, value):
    base = dict(family="llama", n_layers=2, d_model=64, n_heads=4, vocab_size=256,
                max_seq_len=128, ffn_hidden=128)
    with pytest.raises(ConfigError, match=f"model.{key}"):
        ModelConfig(**base, **{key: value})


def test_toml_model_file_with_a_string_bool(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[model]\nfamily = "llama"\nn_layers = 2\nd_model = 64\nn_heads = 4\n'
                    'vocab_size = 256\nmax_seq_len = 128\nffn_hidden = 128\n'
                    'tie_embeddings = "false"\n')
    with pytest.raises(ConfigError, match="tie_embeddings"):
        load_model_file(path)


@pytest.mark.parametrize("extra", [{"num_experts_per_tok": "x"}, {"rope_scaling": "linear"},
                                   {"partial_rotary_factor": "0.5"}])
def test_cli_gives_one_line(tmp_path, extra):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MIXTRAL | extra))
    result = CliRunner().invoke(cli, ["flops", "--model", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error:")
    assert next(iter(extra)) in result.output
