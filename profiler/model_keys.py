"""The keys of a model file, mapped onto the reference model's shape, and the one rule that
turns those keys into the dimensions logical FLOPs need.

Below the harness on purpose: the tracker (``Tracker(model_config="config.json")``) counts
the FLOPs of a config file without building the model, and ``harness.model.ModelConfig``
takes its shape from :func:`shape_of` too. What the reference model cannot honour is listed
as *differences* (see docs/models.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from profiler.errors import ConfigError
from profiler.flops import ModelShape, MoEShape

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FAMILIES = ("gpt2", "llama")


def shape_of(family: str, n_layers: int, d_model: int, n_heads: int, vocab_size: int,
             ffn_hidden: int | None = None, n_kv_heads: int | None = None,
             head_dim: int | None = None, moe_experts: int = 0, moe_top_k: int = 2,
             **_other) -> ModelShape:
    """The dimensions of a model given by the reference model's config keys: ``gpt2`` has a
    GELU MLP of 4d by default, ``llama`` a SwiGLU MLP; ``moe_experts`` routed experts with
    top ``moe_top_k``. Keys that do not change FLOPs (max_seq_len, rope_theta...) are ignored."""
    if family not in FAMILIES:
        raise ConfigError(f"model.family must be one of {FAMILIES}, got {family!r}")
    moe = MoEShape(moe_experts, moe_top_k) if moe_experts else None
    return ModelShape(n_layers=n_layers, d_model=d_model, n_heads=n_heads, vocab_size=vocab_size,
                      ffn_hidden=ffn_hidden or 4 * d_model, n_kv_heads=n_kv_heads,
                      head_dim=head_dim, mlp="gelu" if family == "gpt2" else "swiglu", moe=moe)


#: Hugging Face model types built as the llama family, and their tie_word_embeddings default.
LLAMA_LIKE = {"llama": False, "mistral": False, "qwen2": False, "mixtral": False,
              "gemma": True, "gemma2": True, "qwen3": False}
def _int(data: dict, key: str, where: str, default=None, *, required=True) -> int | None:
    value = data.get(key, default)
    if value is None:
        if required:
            raise ConfigError(f"{where}: missing key '{key}' (the model's shape needs it)")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def _differences(data: dict, model_type: str, head_dim: int) -> list[str]:
    """What the llama-family reference does not build, each with why the FLOPs still hold."""
    out = []
    window = data.get("sliding_window")
    if window and data.get("use_sliding_window", True):
        out.append(f"sliding-window attention (window {window}) is not built: the reference "
                   "attends to the whole context, and logical FLOPs use the attention convention")
    if data.get("attention_bias") or model_type == "qwen2":
        out.append("q/k/v projection biases are not built (bias adds are not matmul FLOPs)")
    if data.get("mlp_bias"):
        out.append("MLP biases are not built (bias adds are not matmul FLOPs)")
    if data.get("rope_scaling"):
        kind = data["rope_scaling"].get("rope_type") or data["rope_scaling"].get("type")
        out.append(f"RoPE scaling ({kind}) is not applied (it changes positions, not FLOPs)")
    if data.get("partial_rotary_factor") is not None and data["partial_rotary_factor"] < 1.0:
        out.append(f"partial rotary ({data['partial_rotary_factor']}) is built as full rotary")
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if data.get(key):
            out.append(f"{key} ({data[key]}) is not applied (element-wise, not matmul work)")
    scalar = data.get("query_pre_attn_scalar")
    if scalar and scalar != head_dim:
        out.append(f"query_pre_attn_scalar {scalar} (attention scale) is not applied")
    act = data.get("hidden_activation") or data.get("hidden_act") or "silu"
    if act != "silu":
        out.append(f"the gated MLP's activation {act} is built as SiLU (the same matmuls)")
    if model_type.startswith("gemma"):
        out.append("Gemma's scaled embeddings and (1 + w) RMSNorm are not built (not matmul work)")
    if data.get("kv_lora_rank") or data.get("q_lora_rank"):
        out.append("multi-head latent attention (MLA) is built as standard attention of "
                   "num_attention_heads x head_dim: its FLOPs are those of that shape")
    if data.get("moe_intermediate_size") or data.get("shared_expert_intermediate_size"):
        out.append("expert widths other than intermediate_size are not built")
    if model_type not in LLAMA_LIKE:
        out.append(f"model_type {model_type!r} is built as the llama-family reference")
    return out


def _float(data: dict, key: str, where: str, default: float | None, *, top: float = 1e30) -> float:
    """A positive number no larger than ``top``; absent or null is ``default`` (0 is not)."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= top:
        quoted = " (write it without quotes)" if isinstance(value, str) else ""
        limit = f" no larger than {top:g}" if top < 1e30 else ""
        raise ConfigError(f"{where}: '{key}' must be a positive number{limit}, got "
                          f"{value!r}{quoted}")
    return float(value)


def _bool(data: dict, key: str, where: str, default: bool) -> bool:
    """A JSON/TOML boolean; absent or null is ``default``. A string such as "false" is
    refused rather than read as true."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be true or false (a boolean, without "
                          f"quotes), got {value!r}")
    return value


def _count(data: dict, key: str, where: str) -> int | None:
    """A whole number >= 0, or None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: '{key}' must be a whole number >= 0 (without quotes), "
                          f"got {value!r}")
    return value


def _check_optional(data: dict, where: str) -> None:
    """Keys only listed as differences must still have their documented types."""
    scaling = data.get("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise ConfigError(f"{where}: 'rope_scaling' must be an object such as "
                          f'{{"rope_type": "linear", "factor": 2.0}} or null, got {scaling!r}')
    _float(data, "partial_rotary_factor", where, None, top=1.0)


def _moe(data: dict, where: str) -> tuple[int, int]:
    """(routed experts, experts per token): 0 experts is a dense MLP; with experts, the
    per-token count must be given as 1..experts (never silently 2)."""
    counts = [(k, _count(data, k, where)) for k in ("num_local_experts", "num_experts")]
    experts = next((v for _, v in counts if v), 0)
    top_k = _count(data, "num_experts_per_tok", where)
    if not experts:
        return 0, 2
    if top_k is None:
        raise ConfigError(f"{where}: {experts} experts but no 'num_experts_per_tok': give how "
                          "many experts each token is routed to")
    if not 1 <= top_k <= experts:
        raise ConfigError(f"{where}: 'num_experts_per_tok' must be between 1 and the "
                          f"{experts} experts, got {top_k}")
    return experts, top_k


def hf_model_kwargs(data: dict, where: str) -> tuple[dict, list[str]]:
    """A Hugging Face config (decoded JSON) as the reference model's config keys
    (``harness.model.ModelConfig``), plus the differences between them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a JSON object of config keys expected")
    model_type = str(data.get("model_type") or "llama")
    if model_type == "gpt2":
        d = _int(data, "n_embd", where)
        kwargs = dict(family="gpt2", n_layers=_int(data, "n_layer", where), d_model=d,
                      n_heads=_int(data, "n_head", where),
                      vocab_size=_int(data, "vocab_size", where),
                      max_seq_len=_int(data, "n_positions", where, 1024),
                      ffn_hidden=_int(data, "n_inner", where, required=False),
                      tie_embeddings=_bool(data, "tie_word_embeddings", where, True))
        return kwargs, []
    d = _int(data, "hidden_size", where)
    heads = _int(data, "num_attention_heads", where)
    head_dim = _int(data, "head_dim", where, required=False) or (
        d // heads if d % heads == 0 else None)
    if head_dim is None:
        raise ConfigError(f"{where}: hidden_size {d} is not divisible by num_attention_heads "
                          f"{heads}: give head_dim")
    _check_optional(data, where)
    experts, top_k = _moe(data, where)
    kwargs = dict(
        family="llama", n_layers=_int(data, "num_hidden_layers", where), d_model=d,
        n_heads=heads, n_kv_heads=_int(data, "num_key_value_heads", where, heads),
        head_dim=head_dim, ffn_hidden=_int(data, "intermediate_size", where),
        vocab_size=_int(data, "vocab_size", where),
        max_seq_len=_int(data, "max_position_embeddings", where, 4096),
        rope_theta=_float(data, "rope_theta", where, 10000.0),
        tie_embeddings=_bool(data, "tie_word_embeddings", where,
                             LLAMA_LIKE.get(model_type, False)),
        moe_experts=experts, moe_top_k=top_k)
    return kwargs, _differences(data, model_type, head_dim)


def read_model_data(path: Path) -> dict:
    """The decoded keys of a model file: JSON (a Hugging Face config) or TOML."""
    from profiler.files import check_input_file

    check_input_file(path, "model file")  # a FIFO or a device would block the read
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no such model file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read model file {path}: {e}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"model file {path} is nested too deeply to be a model config") from None
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"model file {path} is not valid "
                          f"{'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"model file {path}: an object of keys expected")
    return data


def model_kwargs_from_file(path: str | Path) -> tuple[dict, list[str], dict]:
    """(reference config keys, differences, the file's other keys) of a model file: a Hugging
    Face ``config.json``, or etameter's TOML with ``[model]`` or ``[hf_config]``."""
    path = Path(path)
    data = read_model_data(path)
    if path.suffix.lower() == ".json":
        kwargs, differences = hf_model_kwargs(data, str(path))
        return kwargs, differences, {}
    if ("model" in data) == ("hf_config" in data):
        raise ConfigError(f"{path}: give the shape as exactly one of [model] (etameter's keys) "
                          "or [hf_config] (Hugging Face config.json keys)")
    if "model" in data:
        if not isinstance(data["model"], dict):
            raise ConfigError(f"{path}: [model] must be a table of keys")
        return dict(data["model"]), [], data
    kwargs, differences = hf_model_kwargs(data["hf_config"], str(path))
    return kwargs, differences, data


def shape_from_file(path: str | Path) -> ModelShape:
    """The dimensions of the model a file describes (for FLOPs; nothing is built)."""
    kwargs, _, _ = model_kwargs_from_file(path)
    try:
        return shape_of(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None
