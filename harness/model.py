"""The dense reference transformer: decoder-only, built from :class:`ModelConfig`.

Two families:

- ``gpt2``: learned positions, LayerNorm, GELU MLP (4d), biases, tied LM head.
- ``llama``: RoPE, RMSNorm, SwiGLU MLP, grouped-query attention, no biases.

Attention goes through ``torch.nn.functional.scaled_dot_product_attention`` with a causal
mask, so the kernel (math, flash, efficient, cuDNN) is chosen by the caller's
``torch.nn.attention.sdpa_kernel`` context.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from profiler.errors import ConfigError
from profiler.flops import ModelShape
from profiler.model_keys import FAMILIES, shape_of



@dataclass(frozen=True)
class ModelConfig:
    """Shape and family of the reference model. Validated on construction."""

    family: str
    n_layers: int
    d_model: int
    n_heads: int
    vocab_size: int
    max_seq_len: int
    ffn_hidden: int | None = None  # gpt2: 4*d; llama: required
    n_kv_heads: int | None = None  # llama GQA; defaults to n_heads
    head_dim: int | None = None  # defaults to d_model // n_heads
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    moe_experts: int = 0  # 0: dense MLP; else routed experts per layer
    moe_top_k: int = 2

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"model.family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "gpt2" and self.n_kv_heads not in (None, self.n_heads):
            raise ConfigError("model.n_kv_heads: the gpt2 family has no grouped-query attention")
        if self.family == "llama" and self.ffn_hidden is None:
            raise ConfigError("model.ffn_hidden is required for the llama family")
        if self.max_seq_len <= 0:
            raise ConfigError(f"model.max_seq_len must be positive, got {self.max_seq_len}")
        _check_scalars(self)
        self.shape()  # validates the dimensions and names the bad field

    @property
    def mlp(self) -> str:
        return "gelu" if self.family == "gpt2" else "swiglu"

    def shape(self) -> ModelShape:
        """The dimensions logical FLOP accounting needs (``profiler.model_keys.shape_of``)."""
        return shape_of(**asdict(self))

    def to_dict(self) -> dict:
        return asdict(self)


def _check_scalars(cfg: "ModelConfig") -> None:
    """The non-shape keys have their types: a string "false" is not read as true, a RoPE
    base of 0 is not replaced by the default, a MoE's top-k is not rewritten."""
    if not isinstance(cfg.tie_embeddings, bool):
        raise ConfigError(f"model.tie_embeddings must be true or false, got {cfg.tie_embeddings!r}")
    for name in ("rope_theta", "norm_eps"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e30:
            raise ConfigError(f"model.{name} must be a positive number, got {value!r}")
    for name in ("moe_experts", "moe_top_k"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"model.{name} must be a whole number >= 0, got {value!r}")


def _rope_tables(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class KVCache:
    """A static key/value cache: fixed-size buffers, so decode shapes never change."""

    def __init__(self, cfg: ModelConfig, batch_size: int, max_len: int, device, dtype):
        if max_len > cfg.max_seq_len:
            raise ConfigError(f"cache length {max_len} exceeds model.max_seq_len {cfg.max_seq_len}")
        shape = cfg.shape()
        size = (batch_size, shape.kv_heads, max_len, shape.q_head_dim)
        self.k = [torch.zeros(size, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(size, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.max_len = max_len


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        shape = cfg.shape()
        self.n_heads, self.n_kv_heads, self.head_dim = shape.n_heads, shape.kv_heads, shape.q_head_dim
        bias = cfg.family == "gpt2"
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        self.qkv = nn.Linear(cfg.d_model, q_dim + 2 * kv_dim, bias=bias)
        self.out = nn.Linear(q_dim, cfg.d_model, bias=bias)

    def forward(self, x: torch.Tensor, rope, positions: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``positions``: the t positions of x. With a cache, k/v are written at those
        positions; one new token (t == 1) then attends to every cached key up to its position."""
        b, t, _ = x.shape
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        q, k, v = self.qkv(x).split([q_dim, kv_dim, kv_dim], dim=-1)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope[0][positions], rope[1][positions]
            q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        gqa = self.n_kv_heads != self.n_heads
        if cache is not None:
            cache_k, cache_v = cache
            cache_k.index_copy_(2, positions, k.to(cache_k.dtype))
            cache_v.index_copy_(2, positions, v.to(cache_v.dtype))
            if t == 1:
                # (1, max_len): the new token sees every cached key up to its own position.
                visible = (torch.arange(cache_k.shape[2], device=x.device) <= positions).view(1, -1)
                y = F.scaled_dot_product_attention(q, cache_k.to(q.dtype), cache_v.to(q.dtype),
                                                   attn_mask=visible, enable_gqa=gqa)
                return self.out(y.transpose(1, 2).reshape(b, t, q_dim))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        return self.out(y.transpose(1, 2).reshape(b, t, q_dim))


class Mlp(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.shape().ffn_hidden
        self.swiglu = cfg.family == "llama"
        bias = not self.swiglu
        self.up = nn.Linear(cfg.d_model, hidden, bias=bias)
        self.gate = nn.Linear(cfg.d_model, hidden, bias=False) if self.swiglu else None
        self.down = nn.Linear(hidden, cfg.d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class MoeMlp(nn.Module):
    """Top-k routed experts, each an MLP of the config's width.

    The dense path loops over experts and runs each on the tokens routed to it
    (``impl = "loop"``); ``impl = "grouped"`` uses ``torch._grouped_mm`` where the device has it.
    Either way only the routed tokens are computed, as the logical FLOPs count them.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden, d = cfg.shape().ffn_hidden, cfg.d_model
        self.n_experts, self.top_k = cfg.moe_experts, cfg.moe_top_k
        self.swiglu = cfg.family == "llama"
        self.router = nn.Linear(d, self.n_experts, bias=False)
        self.w_up = nn.Parameter(torch.empty(self.n_experts, d, hidden))
        self.w_gate = nn.Parameter(torch.empty(self.n_experts, d, hidden)) if self.swiglu else None
        self.w_down = nn.Parameter(torch.empty(self.n_experts, hidden, d))
        for w in (self.w_up, self.w_gate, self.w_down):
            if w is not None:
                nn.init.normal_(w, mean=0.0, std=0.02)
        self.impl = "loop"  # or "grouped" (set by harness.variants.set_moe_impl)
        self.grouped_dtype = torch.bfloat16

    def _act(self, h_up, h_gate):
        return F.silu(h_gate) * h_up if self.swiglu else F.gelu(h_up, approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, experts = torch.topk(F.softmax(self.router(x).float(), dim=-1), self.top_k)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        flat_expert = experts.reshape(-1)
        order = torch.argsort(flat_expert)
        token_of = order // self.top_k
        xs = x[token_of]
        if self.impl == "grouped":
            counts = torch.bincount(flat_expert, minlength=self.n_experts)
            offs = torch.cumsum(counts, 0).to(torch.int32)
            g = self.grouped_dtype
            xg = xs.to(g)
            up = torch._grouped_mm(xg, self.w_up.to(g), offs=offs)
            gate = torch._grouped_mm(xg, self.w_gate.to(g), offs=offs) if self.swiglu else None
            ys = torch._grouped_mm(self._act(up, gate), self.w_down.to(g), offs=offs)
        else:
            counts = torch.bincount(flat_expert, minlength=self.n_experts).tolist()
            chunks, start = [], 0
            for e, n in enumerate(counts):
                part = xs[start:start + n]
                gate = part @ self.w_gate[e] if self.swiglu else None
                chunks.append(self._act(part @ self.w_up[e], gate) @ self.w_down[e])
                start += n
            ys = torch.cat(chunks)
        ys = ys * weights.reshape(-1)[order].unsqueeze(-1)
        out = torch.zeros_like(x).index_add_(0, token_of, ys.to(x.dtype))
        return out.reshape(shape)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        norm = nn.LayerNorm if cfg.family == "gpt2" else nn.RMSNorm
        self.norm1 = norm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = norm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = MoeMlp(cfg) if cfg.moe_experts else Mlp(cfg)

    def forward(self, x: torch.Tensor, rope, positions, cache=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope, positions, cache)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """Decoder-only language model returning logits, or the mean cross-entropy with targets."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.family == "gpt2" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        norm = nn.LayerNorm if cfg.family == "gpt2" else nn.RMSNorm
        self.norm = norm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        if cfg.family == "llama":
            cos, sin = _rope_tables(cfg.max_seq_len, cfg.shape().q_head_dim, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith(("attn.out.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Distinct parameters (a tied LM head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (or the loss with ``targets``). With a ``cache``, ``positions`` (a tensor,
        so compiled code sees no new shapes) says where the tokens go; default 0..t-1."""
        t = tokens.shape[1]
        if t > self.cfg.max_seq_len:
            raise ConfigError(f"sequence length {t} exceeds model.max_seq_len {self.cfg.max_seq_len}")
        if positions is None:
            positions = torch.arange(t, device=tokens.device)
        x = self.tok_emb(tokens)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        rope = (self.rope_cos, self.rope_sin) if self.cfg.family == "llama" else None
        for i, block in enumerate(self.blocks):
            layer_cache = (cache.k[i], cache.v[i]) if cache is not None else None
            x = block(x, rope, positions, layer_cache)
        logits = self.lm_head(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
