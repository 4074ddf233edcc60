"""Logical FLOP accounting for the dense, uniform-precision reference transformer.

Every formula is theory.md section 1. Notation: L layers, d model width, H query heads,
G key/value heads, Q head dim, f MLP hidden width, V vocabulary, T sequence length,
c decode context length.

- Matmul parameters per layer: attention ``d*H*Q + 2*d*G*Q + H*Q*d``; MLP ``2*d*f`` (GELU) or
  ``3*d*f`` (SwiGLU); MoE counts the *active* MLP: router ``d*E`` + shared experts +
  ``top_k`` routed experts. Plus the LM head ``d*V`` (counted even when tied; the embedding
  lookup is not a matmul).
- Forward FLOPs per token: ``2*N_mm + 4*L*H*Q*T_eff``; training is 3x forward.
- ``T_eff = T`` under the ``full`` convention (PaLM, nanoGPT, torchtitan, FlopCounterMode),
  ``T/2`` under ``causal`` (Megatron). Decode at context c: each new token attends to all c
  cached keys, so no convention halves it.

A quantized, sparse or fused run of the same model is credited with exactly these FLOPs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from profiler.errors import ConfigError

ATTENTION_CONVENTIONS = ("full", "causal")
SCENARIOS = ("train", "prefill", "decode")
MLP_KINDS = ("gelu", "swiglu")

#: Multiplier from forward to training FLOPs (forward + backward w.r.t. inputs and weights).
TRAIN_MULTIPLIER = 3


#: Above this, a model dimension or run size is not a real model's (and would overflow).
MAX_SIZE = 2 ** 24


def _positive_int(owner: str, name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{owner}.{name} must be a positive integer, got {value!r}")
    if value > MAX_SIZE:
        raise ConfigError(f"{owner}.{name} = {value:.3g} is not plausible: at most {MAX_SIZE:,}")


@dataclass(frozen=True)
class MoEShape:
    """Mixture-of-experts MLP: E routed experts of which top_k run per token, plus shared ones."""

    n_experts: int
    top_k: int
    n_shared_experts: int = 0
    expert_ffn_hidden: int | None = None  # defaults to the model's ffn_hidden

    def __post_init__(self) -> None:
        _positive_int("moe", "n_experts", self.n_experts)
        _positive_int("moe", "top_k", self.top_k)
        if self.top_k > self.n_experts:
            raise ConfigError(
                f"moe.top_k ({self.top_k}) cannot exceed moe.n_experts ({self.n_experts})"
            )
        if not isinstance(self.n_shared_experts, int) or self.n_shared_experts < 0:
            raise ConfigError(
                f"moe.n_shared_experts must be a non-negative integer, got {self.n_shared_experts!r}"
            )
        if self.expert_ffn_hidden is not None:
            _positive_int("moe", "expert_ffn_hidden", self.expert_ffn_hidden)


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that its logical FLOPs depend on."""

    n_layers: int
    d_model: int
    n_heads: int
    vocab_size: int
    ffn_hidden: int
    n_kv_heads: int | None = None  # G; defaults to n_heads (multi-head attention)
    head_dim: int | None = None  # Q; defaults to d_model // n_heads
    mlp: str = "gelu"
    moe: MoEShape | None = None

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "vocab_size", "ffn_hidden"):
            _positive_int("model", name, getattr(self, name))
        if self.n_kv_heads is not None:
            _positive_int("model", "n_kv_heads", self.n_kv_heads)
            if self.n_heads % self.n_kv_heads:
                raise ConfigError(
                    f"model.n_heads ({self.n_heads}) must be a multiple of "
                    f"model.n_kv_heads ({self.n_kv_heads})"
                )
        if self.head_dim is not None:
            _positive_int("model", "head_dim", self.head_dim)
        elif self.d_model % self.n_heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) is not divisible by model.n_heads "
                f"({self.n_heads}): set model.head_dim explicitly"
            )
        if self.mlp not in MLP_KINDS:
            raise ConfigError(f"model.mlp must be one of {MLP_KINDS}, got {self.mlp!r}")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def q_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    def dense_mlp_params(self, hidden: int) -> int:
        """Matmul parameters of one dense MLP block of the given hidden width."""
        return (3 if self.mlp == "swiglu" else 2) * self.d_model * hidden

    def matmul_params(self) -> "MatmulParams":
        """Per-layer and total matmul parameters, counting only active experts for MoE."""
        d, h, g, q = self.d_model, self.n_heads, self.kv_heads, self.q_head_dim
        attention = d * h * q + 2 * d * g * q + h * q * d
        router = 0
        if self.moe is None:
            mlp_active = mlp_total = self.dense_mlp_params(self.ffn_hidden)
        else:
            expert = self.dense_mlp_params(self.moe.expert_ffn_hidden or self.ffn_hidden)
            router = d * self.moe.n_experts
            shared = self.moe.n_shared_experts * expert
            mlp_active = shared + self.moe.top_k * expert
            mlp_total = shared + self.moe.n_experts * expert
        return MatmulParams(
            attention_per_layer=attention,
            mlp_active_per_layer=mlp_active,
            mlp_total_per_layer=mlp_total,
            router_per_layer=router,
            lm_head=d * self.vocab_size,
            n_layers=self.n_layers,
        )


@dataclass(frozen=True)
class MatmulParams:
    """Matmul parameter counts (N_mm and its parts). ``active`` is what logical FLOPs use."""

    attention_per_layer: int
    mlp_active_per_layer: int
    mlp_total_per_layer: int
    router_per_layer: int
    lm_head: int
    n_layers: int

    @property
    def active(self) -> int:
        """N_mm with MoE counted by active parameters (router + shared + top_k experts)."""
        per_layer = self.attention_per_layer + self.mlp_active_per_layer + self.router_per_layer
        return self.n_layers * per_layer + self.lm_head

    @property
    def total(self) -> int:
        """N_mm with every expert counted (equals ``active`` for a dense model)."""
        per_layer = self.attention_per_layer + self.mlp_total_per_layer + self.router_per_layer
        return self.n_layers * per_layer + self.lm_head


@dataclass(frozen=True)
class FlopBreakdown:
    """Logical FLOPs by component. Units: FLOPs (per token or per step, as the holder says)."""

    attention_proj: float
    attention_scores: float
    mlp: float
    router: float
    lm_head: float

    @property
    def total(self) -> float:
        return self.attention_proj + self.attention_scores + self.mlp + self.router + self.lm_head

    def scaled(self, factor: float) -> "FlopBreakdown":
        return FlopBreakdown(**{k: v * factor for k, v in asdict(self).items()})

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def check_convention(convention: str) -> str:
    if convention not in ATTENTION_CONVENTIONS:
        raise ConfigError(
            f"attention convention must be one of {ATTENTION_CONVENTIONS}, got {convention!r}"
        )
    return convention


def forward_flops_per_token(shape: ModelShape, keys_attended: float) -> FlopBreakdown:
    """Forward FLOPs of one token that attends to ``keys_attended`` keys (T_eff or c)."""
    if keys_attended < 0:
        raise ConfigError(f"keys attended must be >= 0, got {keys_attended}")
    p = shape.matmul_params()
    L = shape.n_layers
    return FlopBreakdown(
        attention_proj=2.0 * L * p.attention_per_layer,
        attention_scores=4.0 * L * shape.n_heads * shape.q_head_dim * keys_attended,
        mlp=2.0 * L * p.mlp_active_per_layer,
        router=2.0 * L * p.router_per_layer,
        lm_head=2.0 * p.lm_head,
    )


def effective_context(seq_len: int, convention: str) -> float:
    """T_eff: the keys a token attends to on average under the attention convention."""
    check_convention(convention)
    return seq_len if convention == "full" else seq_len / 2


@dataclass(frozen=True)
class LogicalFlops:
    """Logical FLOPs of one scenario step, with the per-token figure and how it was derived."""

    scenario: str
    attention_convention: str
    tokens_per_step: int
    per_token: FlopBreakdown  # average over the step's tokens
    per_step: FlopBreakdown
    n_mm_active: int
    n_mm_total: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def flops_per_token(self) -> float:
        return self.per_token.total

    @property
    def flops_per_step(self) -> float:
        return self.per_step.total

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "attention_convention": self.attention_convention,
            "tokens_per_step": self.tokens_per_step,
            "matmul_params_active": self.n_mm_active,
            "matmul_params_total": self.n_mm_total,
            "logical_flops_per_token": self.flops_per_token,
            "logical_flops_per_step": self.flops_per_step,
            "per_token": self.per_token.to_dict(),
            "per_step": self.per_step.to_dict(),
            "notes": list(self.notes),
        }


def logical_flops(
    shape: ModelShape,
    scenario: str,
    *,
    batch_size: int,
    seq_len: int,
    convention: str = "full",
    new_tokens: int = 1,
) -> LogicalFlops:
    """Logical FLOPs of one step of a scenario.

    - ``train``: forward + backward over ``batch_size * seq_len`` tokens (3x forward).
    - ``prefill``: forward over ``batch_size * seq_len`` tokens.
    - ``decode``: ``new_tokens`` tokens per sequence generated after a cache of ``seq_len``
      tokens; the k-th new token (k = 1..new_tokens) attends to ``seq_len + k`` keys.
    """
    if scenario not in SCENARIOS:
        raise ConfigError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    check_convention(convention)
    _positive_int("run", "batch_size", batch_size)
    _positive_int("run", "seq_len", seq_len)
    notes: list[str] = []
    params = shape.matmul_params()
    if shape.moe is not None:
        notes.append(
            f"MoE counted by active parameters: router + {shape.moe.n_shared_experts} shared + "
            f"{shape.moe.top_k} of {shape.moe.n_experts} routed experts per token "
            f"({params.active:,} of {params.total:,} matmul parameters)"
        )

    if scenario == "decode":
        _positive_int("run", "new_tokens", new_tokens)
        # Sum of (seq_len + k) for k = 1..n, as an average number of keys per new token.
        mean_keys = seq_len + (new_tokens + 1) / 2
        per_token = forward_flops_per_token(shape, mean_keys)
        tokens = batch_size * new_tokens
        notes.append(
            "decode: each new token attends to every cached key, so the attention convention "
            "does not halve it"
        )
    else:
        per_token = forward_flops_per_token(shape, effective_context(seq_len, convention))
        if scenario == "train":
            per_token = per_token.scaled(TRAIN_MULTIPLIER)
        tokens = batch_size * seq_len
    return LogicalFlops(
        scenario=scenario,
        attention_convention=convention,
        tokens_per_step=tokens,
        per_token=per_token,
        per_step=per_token.scaled(tokens),
        n_mm_active=params.active,
        n_mm_total=params.total,
        notes=tuple(notes),
    )
