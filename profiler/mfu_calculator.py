"""MFU of a reported run from its published figures (theory.md sections 1 and 2).

The model is given one of three ways:

- ``params``: N with L, H, Q (the PaLM Appendix B way): ``6N + 12*L*H*Q*T_eff``;
- ``shape``: L, d, V (and f, H, G, MLP kind), from which N_mm is derived;
- ``preset``: one of etameter's presets.

The peak is either a number or looked up in the hardware profiles; an unknown device is an
error, never another device's peak.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

from profiler.errors import ConfigError
from profiler.flops import TRAIN_MULTIPLIER, ModelShape, effective_context, forward_flops_per_token


@dataclass(frozen=True)
class ModelSpec:
    """Where the FLOPs per token come from: N_mm and the attention dimensions."""

    source: str  # "params", "shape" or "preset"
    n_params: float  # N (or N_mm) used in the 6N term
    n_layers: int
    attention_width: int  # H * Q: the score term only needs the product

    @classmethod
    def from_params(cls, n_params: float, n_layers: int, n_heads: int, head_dim: int) -> "ModelSpec":
        for name, value in (("--params", n_params), ("--layers", n_layers),
                            ("--heads", n_heads), ("--head-dim", head_dim)):
            if value is None or value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
            if name != "--params" and value > 2 ** 24:
                raise ConfigError(f"{name} = {value:.3g} is not plausible: at most {2 ** 24:,}")
        return cls("params", float(n_params), n_layers, n_heads * head_dim)

    @classmethod
    def from_shape(cls, shape: ModelShape, source: str = "shape") -> "ModelSpec":
        # The forward pass of one token attending to no keys is exactly 2 * N_mm.
        n_mm = forward_flops_per_token(shape, 0).total / 2
        return cls(source, n_mm, shape.n_layers, shape.n_heads * shape.q_head_dim)


@dataclass(frozen=True)
class MfuReport:
    """The calculator's answer. FLOPs per token are training (or forward) FLOPs."""

    model: ModelSpec
    scenario: str
    seq_len: int
    attention_convention: str
    tokens_per_s: float
    devices: int
    peak_flops_per_s: float
    peak_source: str
    flops_per_token: float
    flops_per_token_without_attention: float

    @property
    def mfu(self) -> float:
        return self.tokens_per_s * self.flops_per_token / (self.devices * self.peak_flops_per_s)

    @property
    def mfu_without_attention(self) -> float:
        return (self.tokens_per_s * self.flops_per_token_without_attention
                / (self.devices * self.peak_flops_per_s))

    def to_dict(self) -> dict:
        return {
            "model_source": self.model.source, "n_params": self.model.n_params,
            "n_layers": self.model.n_layers, "attention_width": self.model.attention_width,
            "scenario": self.scenario, "seq_len": self.seq_len,
            "attention_convention": self.attention_convention,
            "tokens_per_s": self.tokens_per_s, "devices": self.devices,
            "peak_flops_per_s": self.peak_flops_per_s, "peak_source": self.peak_source,
            "flops_per_token": self.flops_per_token,
            "flops_per_token_without_attention": self.flops_per_token_without_attention,
            "flops_per_s": self.tokens_per_s * self.flops_per_token,
            "mfu": self.mfu, "mfu_without_attention": self.mfu_without_attention,
        }


def compute_mfu(model: ModelSpec, *, seq_len: int, tokens_per_s: float, devices: int,
                peak_flops_per_s: float, peak_source: str, scenario: str = "train",
                convention: str = "full") -> MfuReport:
    """MFU with and without the attention term for ``tokens_per_s`` over ``devices``."""
    if scenario not in ("train", "prefill"):
        raise ConfigError(f"--scenario must be train or prefill, got {scenario!r}")
    for name, value in (("--seq", seq_len), ("--tokens-per-s", tokens_per_s),
                        ("--devices", devices), ("peak FLOP/s", peak_flops_per_s)):
        if value is None or value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    factor = TRAIN_MULTIPLIER if scenario == "train" else 1
    dense = 2.0 * factor * model.n_params
    attention = 4.0 * factor * model.n_layers * model.attention_width * effective_context(
        seq_len, convention)
    report = MfuReport(model, scenario, seq_len, convention, float(tokens_per_s), devices,
                       float(peak_flops_per_s), peak_source, dense + attention, dense)
    if not math.isfinite(report.flops_per_token) or not math.isfinite(report.mfu):
        raise ConfigError("the FLOPs of this model overflow: check --params and the shape")
    return report


def check_plausible(report: MfuReport) -> MfuReport:
    """Refuse a reported run whose MFU is above 100%: its throughput or peak is wrong."""
    if report.mfu > 1:
        raise ConfigError(f"MFU would be {100 * report.mfu:.4g}%: above 100% is impossible; "
                          "check --tokens-per-s (the whole job's throughput), --devices and "
                          "the peak")
    return report


def model_spec(*, n_params: float | None = None, n_layers: int | None = None,
               n_heads: int | None = None, head_dim: int | None = None,
               d_model: int | None = None, vocab_size: int | None = None,
               ffn_hidden: int | None = None, n_kv_heads: int | None = None, mlp: str = "gelu",
               preset_shape: ModelShape | None = None) -> ModelSpec:
    """The model given exactly one way: ``n_params`` with L, H and Q; the shape (L, d, V and
    optionally f, H, G, MLP kind); or ``preset_shape``, a preset's shape (the caller resolves
    the preset: this module knows no presets). Errors name the CLI's options."""
    modes = [n_params is not None, d_model is not None, preset_shape is not None]
    if sum(modes) != 1:
        raise ConfigError("give the model exactly one way: --params N with --layers, --heads "
                          "and --head-dim; or the shape --layers, --hidden, --vocab; or --preset")
    if preset_shape is not None:
        return ModelSpec.from_shape(preset_shape, source="preset")
    if n_params is not None:
        missing = [n for n, v in (("--layers", n_layers), ("--heads", n_heads),
                                  ("--head-dim", head_dim)) if v is None]
        if missing:
            raise ConfigError(f"--params also needs {', '.join(missing)} for the attention term")
        return ModelSpec.from_params(n_params, n_layers, n_heads, head_dim)
    missing = [n for n, v in (("--layers", n_layers), ("--vocab", vocab_size)) if v is None]
    if missing:
        raise ConfigError(f"the shape mode also needs {', '.join(missing)}")
    heads = n_heads or (d_model // head_dim if head_dim else 1)
    return ModelSpec.from_shape(ModelShape(
        n_layers=n_layers, d_model=d_model, n_heads=heads, vocab_size=vocab_size,
        ffn_hidden=ffn_hidden or 4 * d_model, n_kv_heads=n_kv_heads, head_dim=head_dim, mlp=mlp))


def throughput(tokens_per_s: float | None, tokens_per_step: float | None,
               step_time_s: float | None) -> float:
    """Tokens per second, given directly or as tokens per step over seconds per step."""
    if (tokens_per_s is None) == (tokens_per_step is None or step_time_s is None):
        raise ConfigError("give the throughput as --tokens-per-s, or as --tokens-per-step "
                          "with --step-time-s (exactly one of the two)")
    if tokens_per_s is None:
        if step_time_s <= 0:
            raise ConfigError(f"--step-time-s must be positive, got {step_time_s}")
        tokens_per_s = tokens_per_step / step_time_s
    return tokens_per_s


def peak_flops(peak_tflops: float | None, device_name: str | None, precision: str,
               profile_files=()) -> tuple[float, str]:
    """The dense peak per device and its source: ``peak_tflops`` as given, or the peak at
    ``precision`` of the hardware profile matching ``device_name`` (never another device's)."""
    if (peak_tflops is None) == (device_name is None):
        raise ConfigError("give the peak as --peak-tflops X or --device NAME (exactly one)")
    if peak_tflops is not None:
        if peak_tflops <= 0:
            raise ConfigError(f"--peak-tflops must be positive, got {peak_tflops}")
        return peak_tflops * 1e12, "--peak-tflops"
    from hardware_profiles.detect import find_device_profile
    from hardware_profiles.profiles import load_profiles

    profile = find_device_profile(device_name, load_profiles(profile_files))
    peak = profile.peak(precision)
    if peak is None:
        raise ConfigError(f"profile {profile.id} has no dense {precision} peak: choose another "
                          f"--precision ({', '.join(profile.peak_flops_per_s)})")
    return peak, f"{profile.id} dense {precision}: {profile.sources['peak_tflops']}"
