"""Model shapes from files (issue 17): Hugging Face configs and etameter's TOML, the shipped
open-model shapes, their differences, and layer slices. The shipped shapes' logical FLOPs are
checked against FlopCounterMode on Hugging Face models built here from scaled-down copies of
their configs (nothing is downloaded)."""

import json

import pytest
import torch

from harness.model_files import from_hf_config, load_model_file, slice_layers
from harness.presets import PRESETS, get_preset
from profiler.errors import ConfigError
from profiler.flops import logical_flops

OPEN_MODELS = ("llama-3.1-8b", "llama-3.1-70b", "mistral-7b", "qwen2.5-7b", "gemma-2-9b",
               "mixtral-8x7b")
SEQ = 64


def scaled(hf: dict, k: int = 32, hk: int = 4) -> dict:
    """The same shape with the same ratios: width / k, heads / hk (so H*Q scales as the
    width), 2 layers, vocabulary / 64; RoPE scaling dropped (it does not change FLOPs)."""
    out = {key: v for key, v in hf.items() if key not in ("rope_scaling",)}
    heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    out.update(hidden_size=hf["hidden_size"] // k, intermediate_size=hf["intermediate_size"] // k,
               num_attention_heads=heads // hk,
               num_key_value_heads=max(1, hf["num_key_value_heads"] // hk),
               head_dim=head_dim * hk // k, num_hidden_layers=2, vocab_size=hf["vocab_size"] // 64,
               max_position_embeddings=min(hf["max_position_embeddings"], 256))
    if "sliding_window" in out and out["sliding_window"]:
        out["sliding_window"] = min(out["sliding_window"], 256)
    return out


def open_model_hf(name: str) -> dict:
    import sys
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from importlib import resources

    data = tomllib.loads((resources.files("harness") / "data" / "open_models.toml").read_text())
    return data[name]["hf_config"]


@pytest.mark.slow
@pytest.mark.parametrize("name", OPEN_MODELS)
def test_shipped_shape_flops_match_flop_counter_on_a_local_hugging_face_model(name):
    transformers = pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode

    hf = scaled(open_model_hf(name))
    config = transformers.AutoConfig.for_model(**hf)
    torch.manual_seed(0)
    # Eager attention (the full score matrix, as the full convention counts it) and eager
    # experts: transformers' default grouped_mm experts kernel is invisible to FlopCounterMode.
    extra = {"experts_implementation": "eager"} if "num_local_experts" in hf else {}
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                                          **extra)
    model.eval()
    tokens = torch.randint(0, hf["vocab_size"], (1, SEQ))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=tokens)
    counted = counter.get_total_flops() / SEQ
    cfg, _ = from_hf_config(hf, name, "test")
    analytic = logical_flops(cfg.shape(), "prefill", batch_size=1, seq_len=SEQ).flops_per_token
    assert counted == pytest.approx(analytic, rel=0.02), (name, counted, analytic)


def test_every_shipped_shape_has_a_source_and_sizes():
    for name in OPEN_MODELS:
        spec = get_preset(name)
        assert spec.source.startswith("https://huggingface.co/"), name
        assert spec.batch_size >= 1 and spec.seq_len <= spec.model.max_seq_len
    assert {"tiny", "cpu-small", "llama-1b", *OPEN_MODELS} <= set(PRESETS)


def test_llama_3_1_8b_counts_as_published():
    spec = get_preset("llama-3.1-8b")
    f = logical_flops(spec.model.shape(), "train", batch_size=1, seq_len=4096)
    # 32 x (2 x 4096^2 + 2 x 4096 x 1024 + 3 x 4096 x 14336) + 4096 x 128256
    assert f.n_mm_active == 32 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 4096 * 128256
    assert any("RoPE scaling" in d for d in spec.differences)


def test_differences_name_what_the_reference_cannot_honour():
    gemma = get_preset("gemma-2-9b")
    text = " ".join(gemma.differences)
    for word in ("sliding-window", "softcapping", "gelu_pytorch_tanh", "Gemma's scaled"):
        assert word in text
    assert gemma.model.tie_embeddings and gemma.model.head_dim == 256
    assert any("biases" in d for d in get_preset("qwen2.5-7b").differences)
    mixtral = get_preset("mixtral-8x7b").model
    assert (mixtral.moe_experts, mixtral.moe_top_k) == (8, 2)


def test_a_config_json_file_and_an_etameter_toml(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(scaled(open_model_hf("mistral-7b"))))
    spec = load_model_file(folder / "config.json")
    assert spec.name == "my-model" and spec.model.family == "llama" and spec.model.n_layers == 2
    own = tmp_path / "mine.toml"
    own.write_text('description = "mine"\nbatch_size = 2\nseq_len = 32\n'
                   'model = { family = "gpt2", n_layers = 3, d_model = 64, n_heads = 4, '
                   'vocab_size = 256, max_seq_len = 64 }\n')
    mine = load_model_file(own)
    assert (mine.batch_size, mine.seq_len, mine.model.n_layers) == (2, 32, 3)
    gpt2 = load_model_file_json(tmp_path, {"model_type": "gpt2", "n_layer": 2, "n_embd": 64,
                                           "n_head": 4, "vocab_size": 100, "n_positions": 128})
    assert gpt2.model.family == "gpt2" and gpt2.model.tie_embeddings


def load_model_file_json(tmp_path, data):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    return load_model_file(path)


@pytest.mark.parametrize("data, message", [
    ({"model_type": "llama", "hidden_size": 64}, "missing key 'num_attention_heads'"),
    ({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 5, "num_hidden_layers": 1,
      "intermediate_size": 8, "vocab_size": 8}, "not divisible"),
    ({"model_type": "llama", "hidden_size": -64, "num_attention_heads": 4}, "positive integer"),
    ([1, 2], "object"),
])
def test_bad_configs_are_clear_errors(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_model_file_json(tmp_path, data)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="no such model file"):
        load_model_file(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model_file(bad)


def test_a_slice_of_layers_keeps_the_width_and_says_so():
    spec = slice_layers(get_preset("llama-3.1-70b"), 2)
    assert spec.model.n_layers == 2 and spec.model.d_model == 8192
    assert "2 of its 80 layers" in spec.description
    assert any("only 2 of 80 layers" in d for d in spec.differences)
    for bad in (0, 81, -1):
        with pytest.raises(ConfigError, match="--layers must be between 1 and"):
            slice_layers(get_preset("llama-3.1-70b"), bad)


def test_the_tracker_counts_a_config_file(tmp_path):
    from profiler.tracker import Tracker

    path = tmp_path / "config.json"
    path.write_text(json.dumps(scaled(open_model_hf("qwen2.5-7b"))))
    tracker = Tracker(model_config=str(path), seq_len=SEQ, meter=False, printer=None)
    cfg, _ = from_hf_config(scaled(open_model_hf("qwen2.5-7b")), "q", "test")
    expected = logical_flops(cfg.shape(), "train", batch_size=1, seq_len=SEQ).flops_per_token
    assert tracker.flops_per_token == pytest.approx(expected)
    with pytest.raises(ConfigError, match="no such model file"):
        Tracker(model_config=str(tmp_path / "none.json"), seq_len=SEQ, meter=False, printer=None)


def _llama_config(tmp_path):
    folder = tmp_path / "small-llama"
    folder.mkdir()
    hf = scaled(open_model_hf("llama-3.1-8b"))
    hf.update(num_hidden_layers=4, max_position_embeddings=128)
    (folder / "config.json").write_text(json.dumps(hf))
    return folder / "config.json"


def test_a_plan_from_a_model_file_and_a_slice_travels_to_workers(tmp_path):
    from harness.plan import BenchConfig, Plan, make_plan

    path = _llama_config(tmp_path)
    plan = make_plan(BenchConfig(model_file=str(path), layers=2, device="cpu", seq_len=32))
    assert plan.preset.name == "small-llama" and plan.preset.model.n_layers == 2
    assert plan.preset.full_layers == 4 and plan.preset.whole_model.n_layers == 4
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.preset == plan.preset  # the worker gets the spec, it does not read the file
    with pytest.raises(ConfigError, match="not both"):
        BenchConfig(preset="tiny", model_file=str(path))


@pytest.mark.slow
def test_bench_runs_a_config_json_slice_end_to_end(tmp_path, db_path):
    from harness.runner import BenchConfig, run_bench
    from profiler.store import Store

    path = _llama_config(tmp_path)
    run = run_bench(BenchConfig(model_file=str(path), layers=2, device="cpu", seq_len=32,
                                steps=2, trials=2, warmup_steps=1, quality=False), Store(db_path))
    assert run["status"] == "ok", run["error"]
    assert run["preset"] == "small-llama" and run["config"]["model"]["n_layers"] == 2
    assert run["config"]["whole_model_layers"] == 4
    assert any("only 2 of 4 layers" in d for d in run["config"]["model_differences"])
    assert run["summary"]["tokens_per_s"] > 0


def test_the_catalog_lists_every_shape_with_memory():
    from harness.catalog import describe

    row = describe(get_preset("llama-3.1-8b"))
    assert row["parameters"] == pytest.approx(8.03e9, rel=0.01)
    assert row["memory"]["train"]["bytes"] > row["memory"]["decode"]["bytes"] > 8e9 * 2
    assert row["memory"]["train"]["estimated"] is True
    assert row["source"].startswith("https://")
