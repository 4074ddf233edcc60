"""The tracker counts what it claims: FLOPs per token of standard models, counted on the path
training runs, within 2% of the analytic count; work the counter cannot see is refused."""

import dataclasses

import pytest
import torch
from torch import nn

from harness.model import ModelConfig, Transformer
from harness.presets import get_preset
from profiler.errors import ConfigError
from profiler.flop_count import count_flops, count_forward
from profiler.flops import logical_flops
from profiler.store import Store
from profiler.tracker import Tracker

TOLERANCE = 0.02


def tracked_flops_per_token(model, example_input, **kwargs) -> float:
    return Tracker(model=model, example_input=example_input, meter=False, printer=None,
                   **kwargs).flops_per_token


# -- nn.Transformer* language models, as a user builds them ----------------------------------

class EncoderLM(nn.Module):
    """Embedding, nn.TransformerEncoder, LM head: the model of issue 14 (d=128, V=1000)."""

    def __init__(self, d=128, nhead=4, f=512, layers=2, vocab=1000):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, nhead, f, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(self.emb(tokens)))


class DecoderLM(nn.Module):
    """Embedding, nn.TransformerDecoder (causal self-attention, cross-attention to the
    embedded sequence itself as memory), LM head."""

    def __init__(self, d=64, nhead=4, f=256, layers=2, vocab=500):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerDecoderLayer(d, nhead, f, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens):
        x = self.emb(tokens)
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        return self.head(self.decoder(x, x, tgt_mask=mask, tgt_is_causal=True))


def encoder_forward_per_token(d, f, layers, vocab, t):
    # Per layer: q, k, v, out projections 4d^2 and the MLP 2df, as matmuls (x2 FLOPs), plus
    # the scores QK^T and the weighted sum PV, 2dT each (full convention). The LM head 2dV.
    return layers * (2 * (4 * d * d + 2 * d * f) + 4 * d * t) + 2 * d * vocab


def test_transformer_encoder_is_counted_whole_even_in_eval_mode():
    model = EncoderLM().eval()  # eval + no_grad is where the fused fast path hid the layers
    x = torch.randint(0, 1000, (2, 128))
    expected = 3 * encoder_forward_per_token(128, 512, 2, 1000, 128)
    assert expected == pytest.approx(3.52e6, rel=1e-3)  # the "about 3.52 M"
    counted = tracked_flops_per_token(model, x)
    assert counted == pytest.approx(expected, rel=TOLERANCE)
    assert counted > 4 * 3 * 2 * 128 * 1000  # not the LM head alone (the 4.6x undercount)
    assert not model.training  # its mode is restored


def test_transformer_decoder():
    model = DecoderLM()
    d, f, layers, vocab, t = 64, 256, 2, 500, 32
    x = torch.randint(0, vocab, (2, t))
    # Self- and cross-attention: 8d^2 of projections, 4dT + 4dS of scores (S = T here).
    forward = layers * (2 * (8 * d * d + 2 * d * f) + 8 * d * t) + 2 * d * vocab
    assert tracked_flops_per_token(model, x) == pytest.approx(3 * forward, rel=TOLERANCE)


# -- Hugging Face models, built from a local config (nothing downloaded) ---------------------

@pytest.mark.slow
def test_hugging_face_gpt2():
    transformers = pytest.importorskip("transformers")
    d, layers, vocab, t = 64, 2, 128, 32
    config = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=4, vocab_size=vocab,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    x = {"input_ids": torch.randint(0, vocab, (2, t))}
    # Conv1D layers are matmuls: qkv 3d^2, out d^2, MLP 2 * 4d^2; the tied LM head dV.
    forward = layers * (2 * 12 * d * d + 4 * d * t) + 2 * d * vocab
    assert tracked_flops_per_token(model, x) == pytest.approx(3 * forward, rel=TOLERANCE)


@pytest.mark.slow
def test_hugging_face_llama_with_gqa_and_swiglu():
    transformers = pytest.importorskip("transformers")
    d, f, layers, heads, kv_heads, vocab, t = 64, 160, 2, 4, 2, 128, 32
    config = transformers.LlamaConfig(
        hidden_size=d, intermediate_size=f, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, vocab_size=vocab, max_position_embeddings=64,
        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = transformers.LlamaForCausalLM(config)
    q = d // heads
    n_mm = layers * (d * heads * q + 2 * d * kv_heads * q + heads * q * d + 3 * d * f) + d * vocab
    forward = 2 * n_mm + 4 * layers * heads * q * t
    x = {"input_ids": torch.randint(0, vocab, (2, t))}
    assert tracked_flops_per_token(model, x) == pytest.approx(3 * forward, rel=TOLERANCE)


# -- the project's own model, against etameter's accounting -----------------------------------

LLAMA = ModelConfig(family="llama", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2,
                    ffn_hidden=160, vocab_size=256, max_seq_len=64, tie_embeddings=False)


@pytest.mark.parametrize("cfg", [get_preset("tiny").model, LLAMA,
                                 dataclasses.replace(LLAMA, moe_experts=4, moe_top_k=2)],
                         ids=["gpt2", "llama", "llama-moe"])
def test_the_projects_model_matches_the_accounting(cfg):
    torch.manual_seed(0)
    t = 32
    x = torch.randint(0, cfg.vocab_size, (2, t))
    expected = logical_flops(cfg.shape(), "train", batch_size=1, seq_len=t,
                             convention="full").flops_per_token
    assert tracked_flops_per_token(Transformer(cfg), x) == pytest.approx(expected, rel=TOLERANCE)


# -- work the counter cannot see ----------------------------------------------------------------

class InvisibleMatmul(nn.Module):
    """A matmul done by a kernel FlopCounterMode does not know (here: broadcast and sum)."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d, d) / d)

    def forward(self, x):
        return (x.unsqueeze(-1) * self.weight).sum(-2)


class HalfSeenLinear(nn.Linear):
    """A Linear whose kernel the counter sees for only half the rows."""

    def forward(self, x):
        half = x.shape[0] // 2
        seen = super().forward(x[:half])
        unseen = (x[half:].unsqueeze(-1) * self.weight.t()).sum(-2) + self.bias
        return torch.cat([seen, unseen])


class WithCustomKernel(nn.Module):
    def __init__(self, d=16, vocab=50, block=None):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.block = block or InvisibleMatmul(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens):
        return self.head(self.block(self.emb(tokens)))


@pytest.mark.parametrize("block", [None, HalfSeenLinear(16, 16)], ids=["zero", "partial"])
def test_uncounted_work_is_refused_with_the_module_named(block):
    x = torch.randint(0, 50, (4, 8))
    with pytest.raises(ConfigError, match=r"block \((InvisibleMatmul|HalfSeenLinear)\).*"
                                          r"flops_per_token=.*allow_uncounted=True"):
        Tracker(model=WithCustomKernel(block=block), example_input=x, meter=False, printer=None)


class ForcedFastPath(nn.Module):
    """An encoder layer its owner runs in eval mode under no_grad: the fused fast path."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.head = nn.Linear(32, 50)

    def forward(self, tokens):
        self.layer.eval()
        with torch.no_grad():
            return self.head(self.layer(self.emb(tokens)))


def test_a_real_fused_fast_path_is_named(monkeypatch):
    # Were the mha fast-path switch unavailable, the fused kernel would hide the attention.
    monkeypatch.setattr(torch.backends.mha, "set_fastpath_enabled", lambda enabled: None)
    with pytest.raises(ConfigError, match=r"layer\.self_attn \(MultiheadAttention\)"):
        count_flops(ForcedFastPath(), torch.randint(0, 50, (2, 8)))


def test_allow_uncounted_tracks_with_a_stored_warning(db_path):
    x = torch.randint(0, 50, (4, 8))
    lines = []
    with Tracker(model=WithCustomKernel(), example_input=x, allow_uncounted=True, window_steps=1, warmup_steps=0,
                 store=db_path, meter=False, printer=lines.append) as tracker:
        tracker.step(32)
    assert tracker.flops_per_token == pytest.approx(3 * 2 * 16 * 50)  # the head only
    assert lines[0].startswith("etameter: warning:") and "block (InvisibleMatmul)" in lines[0]
    run = Store(db_path).runs()[0]
    assert "block (InvisibleMatmul)" in run["config"]["flops_warning"]
    assert "flops_uncounted" in run["results"][0]["flags"]


def test_a_complete_count_names_nothing():
    count = count_flops(EncoderLM(d=32, f=64, vocab=50), torch.randint(0, 50, (2, 8)))
    assert count.uncounted == () and count.uncounted_message() is None
    assert count.by_module["encoder.layers.0.self_attn"] > 0


def test_counting_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Embedding(50, 16), nn.Dropout(0.5), nn.Linear(16, 16),
                          nn.Flatten(0, 1), nn.BatchNorm1d(16), nn.Linear(16, 50))
    model.train()
    model[4].eval()  # mixed modes, as with frozen batch norm
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 50, (4, 8))
    torch.manual_seed(1)
    expected_draw = torch.rand(3)
    torch.manual_seed(1)
    count_forward(model, x)
    assert torch.equal(torch.rand(3), expected_draw)  # dropout drew from a forked RNG
    assert [m.training for m in model] == [True, True, True, True, False, True]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # parameters and running statistics
    assert all(p.grad is None for p in model.parameters())
    assert torch.backends.mha.get_fastpath_enabled()


@pytest.mark.parametrize("kwargs, message", [
    ({"example_input": torch.randn(2, 8, 16)}, "not token ids"),
    ({"example_input": torch.randint(0, 50, (2, 8)), "attention_convention": "causal"},
     "full"),
])
def test_bad_counting_input(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Tracker(model=WithCustomKernel(), meter=False, printer=None, **kwargs)
