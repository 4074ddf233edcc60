"""The offline GPU kit (harness.kit) with a fake pip, and the check's import path: no pandas,
no matplotlib (the kit leaves them out)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness import kit

ROOT = Path(__file__).resolve().parent.parent

FAKE_PIP = """
import os, shutil, sys
dest = sys.argv[sys.argv.index("-d") + 1]
open(os.environ["KIT_ARGS"], "w").write(" ".join(sys.argv[1:]))
for wheel in sys.argv[sys.argv.index("--wheels") + 1].split(","):
    shutil.copy(wheel, dest)
"""


def _wheel(folder: Path, name: str, files: dict) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            z.writestr(member, text)
    return path


def test_the_kit_unpacks_wheels_leaves_out_numpy_and_torchao_extensions(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    made = [_wheel(wheels, "torchao-0.18.0-cp310-abi3-manylinux_2_24_x86_64.whl",
                   {"torchao/__init__.py": "__version__ = '0.18.0'\n",
                    "torchao/_C_cutlass_90a.abi3.so": "binary"}),
            _wheel(wheels, "sqlite_utils-4.2.1-py3-none-any.whl",
                   {"sqlite_utils/__init__.py": "x = 1\n"}),
            _wheel(wheels, "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                   {"numpy/__init__.py": ""})]
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    monkeypatch.setattr(kit, "PACKAGES", ("--wheels", ",".join(map(str, made))))
    monkeypatch.setenv("KIT_ARGS", str(tmp_path / "pip-args"))
    out = tmp_path / "kit"
    manifest = kit.build_kit(str(out), "3.12", pip=[sys.executable, str(script)])
    assert (out / "sqlite_utils/__init__.py").exists() and (out / "torchao/__init__.py").exists()
    assert not (out / "numpy").exists() and manifest["left_out"] == [made[2].name]
    assert manifest["dropped_files"] == ["torchao/_C_cutlass_90a.abi3.so"]
    assert json.loads((out / "KIT.json").read_text())["bytes"] == manifest["bytes"]
    args = (tmp_path / "pip-args").read_text()
    assert "--python-version 3.12" in args and "--only-binary=:all:" in args
    assert "manylinux_2_28_x86_64" in args
    # a rebuild replaces a kit, but never a folder that is not one
    kit.build_kit(str(out), "3.12", pip=[sys.executable, str(script)])
    other = tmp_path / "precious"
    other.mkdir()
    try:
        kit.build_kit(str(other), "3.12", pip=[sys.executable, str(script)])
    except SystemExit as e:
        assert "not a kit" in str(e)
    else:
        raise AssertionError("an existing folder that is not a kit was replaced")


def test_the_kit_folder_is_ignored_by_git():
    assert f"{kit.DEFAULT_DIR}/" in (ROOT / ".gitignore").read_text().split()


BLOCKER = """
import sys
sys.modules["pandas"] = sys.modules["matplotlib"] = None  # as if not installed
from harness.cli import cli
cli(sys.argv[1:])
"""


@pytest.mark.slow
def test_the_check_path_imports_neither_pandas_nor_matplotlib(tmp_path):
    db = str(tmp_path / "k.db")
    for args in (["selftest", "--dry-run", "--json"],
                 ["bench", "--preset", "tiny", "--device", "cpu", "--steps", "1", "--trials",
                  "1", "--warmup", "0", "--json", "--db", db],
                 ["calibrate", "--device", "cpu", "--precision", "fp32", "--repeats", "1",
                  "--json", "--db", db]):
        proc = subprocess.run([sys.executable, "-c", BLOCKER, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        json.loads(proc.stdout)
