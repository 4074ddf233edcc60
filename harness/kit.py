"""The offline GPU kit: the Python packages the GPU check needs, unpacked into one folder of
the checkout, so that a GPU machine with torch and nvidia-ml-py but no internet and no
project install runs the check with ``PYTHONPATH=.gpu-kit:.`` and no ``pip install``.

``python -m harness.kit [DIR]`` (default ``.gpu-kit``, ignored by git), on a machine that
reaches PyPI: ``pip download`` fetches the wheels for the GPU machine's Python and platform
(default CPython 3.12, manylinux x86-64) with their dependencies, but never torch or the
packages the check does not need (numpy, pandas, matplotlib); each wheel is unzipped into DIR
(a wheel is a zip of importable files). torchao's compiled extensions (``torchao/_C*.so``)
are built against one torch release, and the check's paths (float8 training, int8/int4
quantization through torch's own kernels) do not need them: they are left out, which keeps
the kit small (the device tool carries at most 64 MiB). ``DIR/KIT.json`` lists what is in it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ".gpu-kit"
#: What the check imports beyond torch and nvidia-ml-py (their dependencies come along).
PACKAGES = ("torchao==0.18.*", "sqlite-utils>=3.35", "rich>=13", "click>=8", "psutil>=5.9",
            "pytest>=7")
#: Never in the kit: torch is on the machine, and the check imports none of the others.
EXCLUDED = ("torch", "numpy", "pandas", "matplotlib", "nvidia-ml-py", "triton", "pip")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
#: Files left out of the unpacked wheels (compiled against one torch release; unused).
DROPPED = ("torchao/_C",)
MAX_BYTES = 40 * 2**20


def distribution_name(wheel: Path) -> str:
    """The normalised distribution name of a wheel file (``sqlite_utils-3.38-...`` ->
    ``sqlite-utils``)."""
    return wheel.name.split("-")[0].lower().replace("_", "-")


def download(dest: Path, python_version: str, packages=None, pip=None) -> list[Path]:
    """``pip download`` the wheels of ``packages`` and their dependencies for the target."""
    argv = [*(pip or [sys.executable, "-m", "pip"]), "download", "-q", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", "-d", str(dest)]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    subprocess.run([*argv, *(packages or PACKAGES)], check=True)
    return sorted(dest.glob("*.whl"))


def unpack(wheels: list[Path], kit: Path) -> dict:
    """Unzip each wheel into ``kit`` (except EXCLUDED distributions and DROPPED files)."""
    packed, left_out, dropped = [], [], []
    for wheel in wheels:
        name = distribution_name(wheel)
        if name in EXCLUDED:
            left_out.append(wheel.name)
            continue
        with zipfile.ZipFile(wheel) as z:
            for member in z.infolist():
                if member.filename.startswith(DROPPED):
                    dropped.append(member.filename)
                    continue
                z.extract(member, kit)
        packed.append(wheel.name)
    return {"wheels": packed, "left_out": left_out, "dropped_files": dropped}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_kit(kit_dir: str = DEFAULT_DIR, python_version: str = "3.12", pip=None) -> dict:
    """Build the kit folder (replacing an older kit there); its manifest."""
    kit = (ROOT / kit_dir) if not Path(kit_dir).is_absolute() else Path(kit_dir)
    if kit.exists():
        if not (kit / "KIT.json").exists():
            raise SystemExit(f"{kit} exists and is not a kit (no KIT.json): choose another folder")
        shutil.rmtree(kit)
    kit.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = unpack(download(Path(tmp), python_version, pip=pip), kit)
    manifest.update(python_version=python_version, packages=list(PACKAGES),
                    excluded=list(EXCLUDED), bytes=folder_bytes(kit),
                    use=f"PYTHONPATH={kit_dir}:. python -m harness.cli selftest --gpu "
                        "--budget-s 300 --out selftest-out")
    (kit / "KIT.json").write_text(json.dumps(manifest, indent=2))
    if manifest["bytes"] > MAX_BYTES:
        raise SystemExit(f"the kit is {manifest['bytes'] / 2**20:.0f} MiB, over "
                         f"{MAX_BYTES / 2**20:.0f} MiB: the device tool carries 64 MiB in all")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.kit", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=DEFAULT_DIR,
                        help=f"kit folder, relative to the checkout (default {DEFAULT_DIR})")
    parser.add_argument("--python-version", default="3.12",
                        help="the GPU machine's Python, major.minor (default 3.12)")
    args = parser.parse_args(argv)
    manifest = build_kit(args.dir, args.python_version)
    print(f"{args.dir}: {len(manifest['wheels'])} wheels unpacked, "
          f"{manifest['bytes'] / 2**20:.1f} MiB; on the GPU machine: {manifest['use']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
