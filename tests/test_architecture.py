"""The layers only point down (docs/architecture.md): every etameter import, at module level or
inside a function, goes to a module of the same layer or a lower one, and no module is large."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("profiler", "hardware_profiles", "harness", "reports")

#: Module-name prefixes by layer, lowest first; the longest matching prefix decides.
LAYERS = [
    # 0: errors and identities
    ("profiler.errors", "hardware_profiles.identity", "hardware_profiles.cpuinfo", "profiler"),
    # 1: data, meters, accounting, the store and the record of a measurement
    ("hardware_profiles.profiles", "hardware_profiles.detect", "hardware_profiles.vendors",
     "hardware_profiles", "profiler.meters", "profiler.flops", "profiler.flop_count",
     "profiler.metrics", "profiler.stats", "profiler.files", "profiler.model_keys",
     "profiler.timing", "profiler.environment", "profiler.store", "profiler.measurement",
     "profiler.distributed", "profiler.recorder", "profiler.metrics_export"),
    # 2: a device in context (identity + profile + peaks + meters), calibration, calculators
    ("hardware_profiles.device", "hardware_profiles.calibrate", "hardware_profiles.report",
     "profiler.mfu_calculator"),
    # 3: the tracker for user loops and its integrations
    ("profiler.tracker", "profiler.tracker_checks", "profiler.integrations"),
    # 4: the harness and the reports, side by side
    ("harness", "reports"),
    # 5: the command line
    ("harness.cli",),
]
#: Layer-4 packages that must not import each other (only the CLI joins them).
SIBLINGS = ("harness", "reports")
MAX_LINES = 400


def layer_of(module: str) -> int:
    best = (-1, -1)
    for layer, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                best = max(best, (len(p), layer))
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(p for p in parts if p != "__init__")
            yield name, path


def imports(path: Path, name: str):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".")[: -node.level] if not path.name == "__init__.py" else \
                    name.split(".")[: len(name.split(".")) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
            elif node.module:
                yield node.module


def own(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


@pytest.mark.parametrize("name, path", list(modules()), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_imports_point_down(name, path):
    mine = layer_of(name)
    for target in filter(own, imports(path, name)):
        assert layer_of(target) <= mine, (
            f"{name} (layer {mine}) imports {target} (layer {layer_of(target)}): layers only "
            f"point down; move the shared piece lower")
        if mine == 4 and name.split(".")[0] in SIBLINGS:
            assert target.split(".")[0] == name.split(".")[0] or layer_of(target) < 4, (
                f"{name} imports {target}: the harness and the reports do not import each other")


@pytest.mark.parametrize("name, path", list(modules()), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_modules_are_small(name, path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it"


def test_importing_does_no_work():
    """Importing every module touches neither CUDA, NVML, amdsmi nor torchao (torch itself
    imports pynvml, so what is checked is that NVML's library was never loaded)."""
    import subprocess
    import sys

    names = [n for n, _ in modules() if not n.startswith("profiler.integrations.")
             and n != "harness.cli.__main__" and n != "harness.worker"]
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "bad = [m for m in ('amdsmi', 'torchao') if m in sys.modules]\n"
            "nv = sys.modules.get('pynvml')\n"
            "bad += ['NVML loaded'] if nv is not None and nv.nvmlLib is not None else []\n"
            "import torch\n"
            "assert not torch.cuda.is_initialized()\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout}"
