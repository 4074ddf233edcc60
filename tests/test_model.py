"""The reference model matches its config and the FLOP accounting."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from harness.model import ModelConfig, Transformer
from harness.presets import PRESETS, get_preset
from profiler.errors import ConfigError
from profiler.flops import logical_flops


def matmul_weight_count(model: Transformer) -> int:
    """Weights of every nn.Linear, the LM head counted even when tied (as theory.md says)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize("name", ["tiny", "tiny-llama", "cpu-small"])
def test_linear_weights_equal_analytic_n_mm(name):
    preset = get_preset(name)
    model = Transformer(preset.model)
    assert matmul_weight_count(model) == preset.model.shape().matmul_params().active


@pytest.mark.parametrize("name", ["tiny", "tiny-llama"])
def test_forward_backward_shapes(name):
    preset = get_preset(name)
    model = Transformer(preset.model)
    tokens = torch.randint(0, preset.model.vocab_size, (2, 16))
    logits = model(tokens)
    assert logits.shape == (2, 16, preset.model.vocab_size)
    loss = model(tokens, tokens)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_causal_mask_holds():
    """Changing a later token must not change earlier logits."""
    cfg = get_preset("tiny-llama").model
    model = Transformer(cfg).eval()
    a = torch.randint(0, cfg.vocab_size, (1, 12))
    b = a.clone()
    b[0, -1] = (b[0, -1] + 1) % cfg.vocab_size
    with torch.no_grad():
        assert torch.allclose(model(a)[0, :-1], model(b)[0, :-1], atol=1e-5)


def test_tied_head_shares_the_embedding():
    model = Transformer(get_preset("tiny").model)
    assert model.lm_head.weight is model.tok_emb.weight
    untied = Transformer(get_preset("tiny-llama").model)
    assert untied.lm_head.weight is not untied.tok_emb.weight


def test_presets_include_the_promised_sizes():
    assert {"tiny", "gpt2-124m", "llama-1b"} <= set(PRESETS)
    n_1b = get_preset("llama-1b").model
    # Llama-3.2-1B: 1.24e9 parameters (embedding tied).
    emb = n_1b.vocab_size * n_1b.d_model
    non_emb = n_1b.shape().matmul_params().active - emb
    norms = (2 * n_1b.n_layers + 1) * n_1b.d_model
    assert 1.2e9 < emb + non_emb + norms < 1.3e9


def test_invalid_config_names_the_field():
    with pytest.raises(ConfigError, match="model.family"):
        ModelConfig(family="bert", n_layers=1, d_model=8, n_heads=2, vocab_size=8, max_seq_len=8)
    with pytest.raises(ConfigError, match="ffn_hidden"):
        ModelConfig(family="llama", n_layers=1, d_model=8, n_heads=2, vocab_size=8, max_seq_len=8)


@pytest.mark.parametrize("name", ["tiny", "tiny-llama"])
@pytest.mark.parametrize("train", [False, True])
def test_flop_counter_agrees_with_the_full_convention(name, train):
    """FlopCounterMode on the math attention path counts exactly the full-convention FLOPs.

    The math path decomposes attention into matmuls that the counter sees (the fused CPU
    kernel is counted as nothing), and its backward has no recompute, so training is 3x.
    """
    preset = get_preset(name)
    model = Transformer(preset.model)
    batch, seq = 2, 32
    tokens = torch.randint(0, preset.model.vocab_size, (batch, seq))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        if train:
            model(tokens, tokens).backward()
        else:
            model(tokens)
    scenario = "train" if train else "prefill"
    analytic = logical_flops(preset.model.shape(), scenario, batch_size=batch, seq_len=seq)
    assert counter.get_total_flops() == pytest.approx(analytic.flops_per_step, rel=0.01)


@pytest.mark.parametrize("name", ["tiny", "tiny-llama"])
@pytest.mark.parametrize("train", [False, True])
def test_flop_counter_and_the_causal_convention(name, train):
    """Under the causal convention the analytic count is lower than the counter's by exactly
    half the attention-score term: the math path computes the whole T x T score matrix."""
    preset = get_preset(name)
    model = Transformer(preset.model)
    tokens = torch.randint(0, preset.model.vocab_size, (2, 32))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        if train:
            model(tokens, tokens).backward()
        else:
            model(tokens)
    scenario = "train" if train else "prefill"
    full = logical_flops(preset.model.shape(), scenario, batch_size=2, seq_len=32)
    causal = logical_flops(preset.model.shape(), scenario, batch_size=2, seq_len=32,
                           convention="causal")
    assert counter.get_total_flops() - causal.flops_per_step == pytest.approx(
        full.per_step.attention_scores / 2, rel=1e-6)


def test_flop_counter_sees_nothing_of_the_fused_cpu_attention_kernel():
    """The documented difference: outside the math path, the fused CPU attention kernel is
    not counted, so the counter misses exactly the attention-score term."""
    preset = get_preset("tiny")
    model = Transformer(preset.model)
    tokens = torch.randint(0, preset.model.vocab_size, (2, 32))
    counter = FlopCounterMode(display=False)
    with counter:
        model(tokens)
    full = logical_flops(preset.model.shape(), "prefill", batch_size=2, seq_len=32)
    assert full.flops_per_step - counter.get_total_flops() == pytest.approx(
        full.per_step.attention_scores, rel=1e-6)


@pytest.mark.parametrize("name", ["tiny", "tiny-llama"])
def test_decode_with_the_kv_cache_matches_the_full_forward(name):
    """Feeding tokens one at a time through the static cache gives the same logits as one
    forward pass over the whole sequence."""
    from harness.model import KVCache

    cfg = get_preset(name).model
    model = Transformer(cfg).eval()
    tokens = torch.randint(0, cfg.vocab_size, (2, 12))
    with torch.no_grad():
        full = model(tokens)
        cache = KVCache(cfg, 2, 16, "cpu", torch.float32)
        prefix = model(tokens[:, :8], cache=cache)
        steps = [model(tokens[:, i:i + 1], cache=cache, positions=torch.tensor([i]))
                 for i in range(8, 12)]
    assert torch.allclose(prefix, full[:, :8], atol=1e-5)
    assert torch.allclose(torch.cat(steps, dim=1), full[:, 8:], atol=1e-5)


def test_moe_model_counts_active_flops():
    """The MoE model's counted FLOPs equal the accounting by active parameters."""
    from dataclasses import replace

    cfg = replace(get_preset("tiny-llama").model, moe_experts=4, moe_top_k=2)
    model = Transformer(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (2, 32))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(tokens)
    analytic = logical_flops(cfg.shape(), "prefill", batch_size=2, seq_len=32)
    assert counter.get_total_flops() == pytest.approx(analytic.flops_per_step, rel=0.01)
    assert any("active parameters" in n for n in analytic.notes)


def test_moe_output_changes_with_routing_but_keeps_shape():
    from dataclasses import replace

    cfg = replace(get_preset("tiny").model, moe_experts=4, moe_top_k=1)
    model = Transformer(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (2, 16))
    loss = model(tokens, tokens)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.blocks[0].mlp.w_up.grad is not None
