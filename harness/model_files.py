"""Model shapes from files: a Hugging Face ``config.json`` or etameter's own TOML.

The reference model (``harness.model``) is a dense decoder in two families: ``gpt2`` and
``llama`` (RoPE, RMSNorm, gated MLP, GQA, optional MoE). The keys of a file are mapped onto
it by :mod:`profiler.model_keys`; what the reference cannot honour (sliding windows, biases it
lacks, soft-capping, RoPE scaling, MLA, partial rotary, a GeGLU activation...) is listed as
*differences*, and the logical FLOPs still follow the config's shape. Nothing is downloaded:
configs are files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.model import ModelConfig
from profiler.errors import ConfigError
from profiler.model_keys import hf_model_kwargs, model_kwargs_from_file

DEFAULT_BATCH = 1
DEFAULT_SEQ = 4096


@dataclass(frozen=True)
class ModelSpec:
    """A model shape with the sizes it is benchmarked at, where it came from, and how the
    reference model differs from the real one."""

    name: str
    model: ModelConfig
    batch_size: int
    seq_len: int
    description: str
    source: str = ""
    differences: tuple[str, ...] = field(default_factory=tuple)
    #: With --layers: the whole model's layer count (the spec is a slice of it).
    full_layers: int | None = None
    #: Why the batch size and sequence length are what they are (given, or a default).
    batch_reason: str = ""
    seq_reason: str = ""

    @property
    def whole_model(self) -> ModelConfig:
        """The model this spec is a slice of (itself when it is not a slice)."""
        return replace(self.model, n_layers=self.full_layers or self.model.n_layers)

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model.to_dict(), "batch_size": self.batch_size,
                "seq_len": self.seq_len, "description": self.description, "source": self.source,
                "differences": list(self.differences), "full_layers": self.full_layers,
                "batch_reason": self.batch_reason, "seq_reason": self.seq_reason}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return cls(data["name"], ModelConfig(**data["model"]), data["batch_size"],
                   data["seq_len"], data["description"], data.get("source", ""),
                   tuple(data.get("differences") or ()), data.get("full_layers"),
                   data.get("batch_reason", ""), data.get("seq_reason", ""))


def _config(kwargs: dict, where: str) -> ModelConfig:
    try:
        return ModelConfig(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def _size(entry: dict, key: str, where: str, default: int) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def _size_reasons(entry: dict, where: str, cfg: ModelConfig,
                  owner: str | None = None) -> tuple[str, str]:
    """Why the batch and sequence length are what they are: given by ``owner`` (a preset,
    else the file ``where``), or etameter's defaults for a shape that gives none (and why
    the default is that)."""
    given = f"{owner}'s {{}} ({where})" if owner else f"{{}} given in {where}"
    lacks = f"{owner} ({where}) gives no" if owner else f"{where} gives no"
    batch = (given.format(f"batch_size {entry['batch_size']}") if "batch_size" in entry else
             f"{lacks} batch_size: etameter's default batch {DEFAULT_BATCH} (set --batch)")
    if "seq_len" in entry:
        seq = given.format(f"seq_len {entry['seq_len']}")
    elif DEFAULT_SEQ <= cfg.max_seq_len:
        seq = f"{lacks} seq_len: etameter's default {DEFAULT_SEQ} (set --seq)"
    else:
        seq = (f"{lacks} seq_len: the model's max_seq_len {cfg.max_seq_len} "
               f"(etameter's default {DEFAULT_SEQ} is longer; set --seq)")
    return batch, seq


def _spec(name: str, cfg: ModelConfig, entry: dict, where: str, differences,
          owner: str | None = None) -> ModelSpec:
    seq = _size(entry, "seq_len", where, min(DEFAULT_SEQ, cfg.max_seq_len))
    if seq > cfg.max_seq_len:
        raise ConfigError(f"{where}: seq_len {seq} exceeds the model's max_seq_len "
                          f"{cfg.max_seq_len}")
    batch_reason, seq_reason = _size_reasons(entry, where, cfg, owner)
    return ModelSpec(name, cfg, _size(entry, "batch_size", where, DEFAULT_BATCH), seq,
                     str(entry.get("description") or name), str(entry.get("source") or where),
                     tuple(differences), batch_reason=batch_reason, seq_reason=seq_reason)


def spec_from_entry(name: str, entry: dict, where: str, owner: str | None = None) -> ModelSpec:
    """A spec from a TOML entry: ``model`` (etameter's keys) or ``hf_config`` (Hugging Face
    keys), with optional ``batch_size``, ``seq_len``, ``description`` and ``source``;
    ``owner`` names it in the size reasons ("the tiny preset")."""
    if ("model" in entry) == ("hf_config" in entry):
        raise ConfigError(f"{where}: give the shape as exactly one of [model] (etameter's keys) "
                          "or [hf_config] (Hugging Face config.json keys)")
    if "model" in entry:
        kwargs, differences = dict(entry["model"]), []
    else:
        kwargs, differences = hf_model_kwargs(entry["hf_config"], where)
    return _spec(name, _config(kwargs, where), entry, where, differences, owner)


def from_hf_config(data: dict, name: str, where: str) -> tuple[ModelConfig, list[str]]:
    """A Hugging Face config (decoded JSON) as the reference model's config, and the
    differences between them."""
    kwargs, differences = hf_model_kwargs(data, where)
    return _config(kwargs, where), differences


def load_model_file(path: str | Path) -> ModelSpec:
    """A model from ``path``: a Hugging Face ``config.json`` or etameter's TOML."""
    path = Path(path)
    kwargs, differences, entry = model_kwargs_from_file(path)
    name = path.parent.name if path.name == "config.json" else path.stem
    if not entry:
        entry = {"description": f"{name} from {path}", "source": str(path)}
    return _spec(name, _config(kwargs, str(path)), entry, str(path), differences)


def slice_layers(spec: ModelSpec, n_layers: int | None) -> ModelSpec:
    """The first ``n_layers`` layers of the model at full width (None: the whole model)."""
    if n_layers is None:
        return spec
    full = spec.model.n_layers
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 0 < n_layers <= full:
        raise ConfigError(f"--layers must be between 1 and the model's {full} layers, got "
                          f"{n_layers}")
    return replace(spec, model=replace(spec.model, n_layers=n_layers), full_layers=full,
                   description=f"{spec.description}; a slice: {n_layers} of its {full} layers "
                               "at full width",
                   differences=spec.differences + (
                       f"only {n_layers} of {full} layers are run: MFU and eta per token are "
                       "the slice's; the whole model's logical FLOPs are stated beside "
                       "('whole model', and whole_model in --json)",))

