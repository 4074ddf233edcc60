"""Named model presets and the device-dependent default.

Each preset is a model config plus the batch size and sequence length it is benchmarked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.model import ModelConfig
from profiler.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    model: ModelConfig
    batch_size: int
    seq_len: int
    description: str


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", ModelConfig(family="gpt2", n_layers=2, d_model=64, n_heads=4, vocab_size=512,
                               max_seq_len=64), 4, 64,
           "GPT-2 style, 2 layers, d=64: for tests, runs in seconds"),
    Preset("tiny-llama", ModelConfig(family="llama", n_layers=2, d_model=64, n_heads=4,
                                     n_kv_heads=2, ffn_hidden=176, vocab_size=512,
                                     max_seq_len=64, tie_embeddings=False), 4, 64,
           "Llama style (GQA 4:2, SwiGLU, RoPE), 2 layers, d=64: for tests"),
    Preset("cpu-small", ModelConfig(family="gpt2", n_layers=4, d_model=256, n_heads=4,
                                    vocab_size=8192, max_seq_len=256), 8, 256,
           "GPT-2 style, 4 layers, d=256, 8x256 tokens: the default on a CPU"),
    Preset("gpt2-124m", ModelConfig(family="gpt2", n_layers=12, d_model=768, n_heads=12,
                                    vocab_size=50304, max_seq_len=1024), 8, 1024,
           "GPT-2 small (124M), vocabulary padded to 50304 as in nanoGPT"),
    Preset("llama-1b", ModelConfig(family="llama", n_layers=16, d_model=2048, n_heads=32,
                                   n_kv_heads=8, head_dim=64, ffn_hidden=8192,
                                   vocab_size=128256, max_seq_len=2048, rope_theta=500000.0,
                                   tie_embeddings=True), 4, 2048,
           "Llama-3.2-1B shape (1.24B parameters, GQA 32:8): the default on a large GPU"),
)}

#: A GPU needs this much memory for llama-1b training (weights, grads, AdamW, activations).
LARGE_GPU_MIN_GIB = 60


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}"
        ) from None


def default_preset(device_type: str, gpu_memory_gib: float | None = None) -> tuple[Preset, str]:
    """The preset ``etameter bench`` uses when none is given, and why it was chosen."""
    if device_type == "cpu":
        return PRESETS["cpu-small"], ("no CUDA device: cpu-small finishes in well under two "
                                      "minutes on a 2-core CPU")
    if gpu_memory_gib is not None and gpu_memory_gib >= LARGE_GPU_MIN_GIB:
        return PRESETS["llama-1b"], (f"CUDA device with {gpu_memory_gib:.0f} GiB: llama-1b at "
                                     f"4x2048 tokens keeps an H100-class GPU busy")
    return PRESETS["gpt2-124m"], (f"CUDA device with {gpu_memory_gib or 0:.0f} GiB (< "
                                  f"{LARGE_GPU_MIN_GIB} GiB): gpt2-124m fits where llama-1b "
                                  f"training would not")
