"""Named model presets and shipped shapes of open models, both data files with sources
(``harness/data/presets.toml``, ``harness/data/open_models.toml``), and the device default.

A preset is a model shape plus the batch size and sequence length it is benchmarked at.
Open models keep the keys of their Hugging Face config.json and are read by the same parser
as ``--model FILE`` (:mod:`harness.model_files`), so their differences from the reference
model are stated. Files are read on first use, not at import.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

from harness.model_files import ModelSpec, load_model_file, slice_layers, spec_from_entry
from profiler.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DATA_FILES = ("presets.toml", "open_models.toml")
#: A GPU needs this much memory for llama-1b training (weights, grads, AdamW, activations).
LARGE_GPU_MIN_GIB = 60


@lru_cache(maxsize=1)
def all_presets() -> dict[str, ModelSpec]:
    """Every built-in preset and open-model shape, by name, in file order."""
    out: dict[str, ModelSpec] = {}
    for name in DATA_FILES:
        where = f"harness/data/{name}"
        data = tomllib.loads((resources.files("harness") / "data" / name).read_text())
        for key, entry in data.items():
            if key == "schema":
                continue
            if key in out:
                raise ConfigError(f"{where}: preset {key!r} is defined twice")
            out[key] = spec_from_entry(key, entry, f"{where} [{key}]", f"the {key} preset")
    return out


class _Presets(Mapping):
    """``PRESETS``: a read-only mapping that loads the data files on first use."""

    def __getitem__(self, name: str) -> ModelSpec:
        return all_presets()[name]

    def __iter__(self):
        return iter(all_presets())

    def __len__(self) -> int:
        return len(all_presets())


PRESETS: Mapping[str, ModelSpec] = _Presets()


def get_preset(name: str) -> ModelSpec:
    try:
        return all_presets()[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}: choose one of {', '.join(all_presets())} "
            "(or give your own shape with --model FILE)"
        ) from None


def default_preset(device_type: str, gpu_memory_gib: float | None = None) -> tuple[ModelSpec, str]:
    """The preset ``etameter bench`` uses when none is given, and why it was chosen."""
    if device_type == "cpu":
        return get_preset("cpu-small"), ("no CUDA device: cpu-small finishes in well under two "
                                         "minutes on a 2-core CPU")
    if gpu_memory_gib is not None and gpu_memory_gib >= LARGE_GPU_MIN_GIB:
        return get_preset("llama-1b"), (f"CUDA device with {gpu_memory_gib:.0f} GiB: llama-1b "
                                        f"at 4x2048 tokens keeps an H100-class GPU busy")
    return get_preset("gpt2-124m"), (f"CUDA device with {gpu_memory_gib or 0:.0f} GiB (< "
                                     f"{LARGE_GPU_MIN_GIB} GiB): gpt2-124m fits where llama-1b "
                                     f"training would not")


def choose_model(preset: str | None, model_file: str | None, layers: int | None = None) -> ModelSpec:
    """The model a command names: ``--preset NAME`` or ``--model FILE`` (exactly one), then
    ``--layers N`` of it."""
    if (preset is None) == (model_file is None):
        raise ConfigError("give the model as --preset NAME or --model FILE (exactly one; see "
                          "etameter presets)")
    spec = get_preset(preset) if preset is not None else load_model_file(model_file)
    return slice_layers(spec, layers)
