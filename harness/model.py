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

FAMILIES = ("gpt2", "llama")


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

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"model.family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "gpt2" and self.n_kv_heads not in (None, self.n_heads):
            raise ConfigError("model.n_kv_heads: the gpt2 family has no grouped-query attention")
        if self.family == "llama" and self.ffn_hidden is None:
            raise ConfigError("model.ffn_hidden is required for the llama family")
        if self.max_seq_len <= 0:
            raise ConfigError(f"model.max_seq_len must be positive, got {self.max_seq_len}")
        self.shape()  # validates the dimensions and names the bad field

    @property
    def mlp(self) -> str:
        return "gelu" if self.family == "gpt2" else "swiglu"

    def shape(self) -> ModelShape:
        """The dimensions logical FLOP accounting needs."""
        return ModelShape(
            n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads,
            vocab_size=self.vocab_size, ffn_hidden=self.ffn_hidden or 4 * self.d_model,
            n_kv_heads=self.n_kv_heads, head_dim=self.head_dim, mlp=self.mlp,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _rope_tables(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        shape = cfg.shape()
        self.n_heads, self.n_kv_heads, self.head_dim = shape.n_heads, shape.kv_heads, shape.q_head_dim
        bias = cfg.family == "gpt2"
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        self.qkv = nn.Linear(cfg.d_model, q_dim + 2 * kv_dim, bias=bias)
        self.out = nn.Linear(q_dim, cfg.d_model, bias=bias)
        self.use_rope = cfg.family == "llama"

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, _ = x.shape
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        q, k, v = self.qkv(x).split([q_dim, kv_dim, kv_dim], dim=-1)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope[0][:t], rope[1][:t]
            q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.n_kv_heads != self.n_heads
        )
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


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        norm = nn.LayerNorm if cfg.family == "gpt2" else nn.RMSNorm
        self.norm1 = norm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = norm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg)

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
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

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.cfg.max_seq_len:
            raise ConfigError(f"sequence length {t} exceeds model.max_seq_len {self.cfg.max_seq_len}")
        x = self.tok_emb(tokens)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(t, device=tokens.device))
        rope = (self.rope_cos, self.rope_sin) if self.cfg.family == "llama" else None
        for block in self.blocks:
            x = block(x, rope)
        logits = self.lm_head(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
