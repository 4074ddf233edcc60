"""Logical FLOPs of tiny configs against values worked out by hand (theory.md section 1)."""

import pytest

from profiler.errors import ConfigError
from profiler.flops import MoEShape, ModelShape, logical_flops

# GPT-2 style: L=2, d=64, H=4 (Q=16), f=256, V=512.
#   attention params/layer = d*H*Q + 2*d*G*Q + H*Q*d = 4*64*64 = 16384
#   MLP params/layer       = 2*d*f = 32768
#   LM head                = d*V = 32768
#   N_mm = 2*(16384+32768) + 32768 = 131072
GPT = ModelShape(n_layers=2, d_model=64, n_heads=4, vocab_size=512, ffn_hidden=256)

# Llama style: L=2, d=64, H=4, G=2, Q=16, f=176 (SwiGLU), V=512.
#   attention params/layer = 64*64 + 2*64*32 + 64*64 = 12288
#   MLP params/layer       = 3*64*176 = 33792
#   N_mm = 2*(12288+33792) + 32768 = 124928
LLAMA = ModelShape(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=512,
                   ffn_hidden=176, mlp="swiglu")


def test_matmul_params_by_hand():
    assert GPT.matmul_params().active == 131072
    assert LLAMA.matmul_params().active == 124928


def test_gpt2_train_full_by_hand():
    # forward/token = 2*131072 + 4*L*H*Q*T = 262144 + 4*2*4*16*64 = 262144 + 32768 = 294912
    f = logical_flops(GPT, "train", batch_size=4, seq_len=64, convention="full")
    assert f.flops_per_token == 3 * 294912 == 884736
    assert f.tokens_per_step == 256
    assert f.flops_per_step == 884736 * 256


def test_causal_halves_only_the_score_term():
    full = logical_flops(GPT, "train", batch_size=1, seq_len=64, convention="full")
    causal = logical_flops(GPT, "train", batch_size=1, seq_len=64, convention="causal")
    assert full.per_token.attention_scores == 3 * 32768
    assert causal.per_token.attention_scores == 3 * 16384
    assert full.flops_per_token - causal.flops_per_token == 3 * 16384
    assert causal.attention_convention == "causal"


def test_llama_gqa_prefill_by_hand():
    # GQA shrinks K/V projections, never the score term (it uses all H query heads).
    # forward/token = 2*124928 + 4*2*4*16*32 = 249856 + 16384 = 266240
    f = logical_flops(LLAMA, "prefill", batch_size=2, seq_len=32)
    assert f.flops_per_token == 266240
    assert f.flops_per_step == 266240 * 64


def test_breakdown_sums_to_total():
    f = logical_flops(LLAMA, "train", batch_size=2, seq_len=32)
    parts = f.per_token.to_dict()
    assert parts["attention_proj"] == 3 * 2 * 2 * 12288
    assert parts["mlp"] == 3 * 2 * 2 * 33792
    assert parts["lm_head"] == 3 * 2 * 32768
    assert sum(v for k, v in parts.items() if k != "total") == parts["total"]


def test_decode_averages_the_growing_context():
    # 3 new tokens after a cache of 10: they attend to 11, 12, 13 keys -> mean 12.
    f = logical_flops(GPT, "decode", batch_size=2, seq_len=10, new_tokens=3)
    assert f.tokens_per_step == 6
    assert f.flops_per_token == 2 * 131072 + 4 * 2 * 4 * 16 * 12
    # Convention does not halve decode.
    g = logical_flops(GPT, "decode", batch_size=2, seq_len=10, new_tokens=3, convention="causal")
    assert g.flops_per_token == f.flops_per_token


def test_moe_counts_active_experts_and_says_so():
    moe = ModelShape(n_layers=1, d_model=8, n_heads=2, vocab_size=10, ffn_hidden=16,
                     moe=MoEShape(n_experts=4, top_k=2, n_shared_experts=1))
    p = moe.matmul_params()
    expert = 2 * 8 * 16
    assert p.mlp_active_per_layer == 3 * expert  # 1 shared + top-2
    assert p.mlp_total_per_layer == 5 * expert
    assert p.router_per_layer == 8 * 4
    assert p.active == 4 * 8 * 8 + 3 * expert + 32 + 80
    f = logical_flops(moe, "prefill", batch_size=1, seq_len=4)
    assert f.per_token.router == 2 * 32
    assert "active parameters" in f.notes[0]


def test_palm_form():
    from profiler.mfu_calculator import ModelSpec, compute_mfu

    spec = ModelSpec.from_params(540.35e9, n_layers=118, n_heads=48, head_dim=256)
    report = compute_mfu(spec, seq_len=2048, tokens_per_s=1.0, devices=1, peak_flops_per_s=1.0,
                         peak_source="test")
    assert report.flops_per_token == pytest.approx(3.278e12, rel=1e-3)


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_layers=0), "model.n_layers"),
    (dict(n_kv_heads=3), "model.n_heads"),
    (dict(mlp="relu"), "model.mlp"),
    (dict(d_model=65), "model.d_model"),
])
def test_invalid_shapes_name_the_field(kwargs, field):
    base = dict(n_layers=2, d_model=64, n_heads=4, vocab_size=512, ffn_hidden=256)
    with pytest.raises(ConfigError, match=field):
        ModelShape(**{**base, **kwargs})


def test_bad_convention_and_scenario():
    with pytest.raises(ConfigError, match="convention"):
        logical_flops(GPT, "train", batch_size=1, seq_len=4, convention="half")
    with pytest.raises(ConfigError, match="scenario"):
        logical_flops(GPT, "inference", batch_size=1, seq_len=4)
