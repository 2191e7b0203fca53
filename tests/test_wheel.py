"""The built wheel ships every module of the source tree, and ``py.typed``.

An editable install reads the source tree, so a package missing from the
build configuration only shows in a real install (``runnel.checkpoint`` once
was). This builds the wheel with the project's own backend from a copy of the
tree (a stale ``build/`` cannot leak into it), compares its files with the
sources, and imports every module from the unpacked wheel in a fresh
interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 300


def _source_modules() -> set[str]:
    """Wheel paths of every source file: src/runnel/** and kernels/ (shipped as runnel/kernels)."""
    files = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "runnel").rglob("*.py")}
    files |= {f"runnel/kernels/{p.name}" for p in (ROOT / "kernels").glob("*.py")}
    return {f for f in files if "__pycache__" not in f}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for f in ROOT.iterdir():  # pyproject.toml, setup.py, README.md ...
        if f.is_file():
            shutil.copy(f, tree / f.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.nbi", "*.nbc")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "kernels", tree / "kernels", ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_wheel(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", build, str(out)], cwd=tree, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, f"building the wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (name,) = done.stdout.split()[-1:]
    return out / name


def test_wheel_ships_every_source_module_and_py_typed(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    shipped = {n for n in names if n.startswith("runnel/") and n.endswith(".py")}
    assert sorted(_source_modules() - shipped) == [], "modules of the source tree missing from the wheel"
    assert sorted(shipped - _source_modules()) == [], "the wheel ships modules that are not in the source tree"
    assert "runnel/py.typed" in names
    assert {"runnel/ui/static/live.js", "runnel/ui/static/style.css"} <= names, "the web UI's static files"


def test_every_module_imports_from_the_unpacked_wheel(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path)
    modules = sorted(f[:-3].replace("/", ".").removesuffix(".__init__") for f in _source_modules())
    check = ("import importlib, sys\n"
             "for m in sys.argv[2:]:\n"
             "    mod = importlib.import_module(m)\n"
             "    assert mod.__file__.startswith(sys.argv[1]), (m, mod.__file__)\n")
    # -I: neither the working directory nor PYTHONPATH, the source tree or its editable install;
    # the unpacked wheel is put first on the path by hand
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); exec(compile({check!r}, 'check', 'exec'))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path), *modules], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
