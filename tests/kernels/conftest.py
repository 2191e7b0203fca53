"""Make ``runnel.kernels`` importable before pyproject.toml maps it.

Once the distribution is installed (``kernels/`` mapped to
``runnel.kernels``) the import succeeds and this file does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Source a child interpreter runs first to import runnel.kernels the same
# way (used by the cross-process hashing test).
BOOTSTRAP = f"""
import importlib.util, sys, types
try:
    import runnel.kernels
except ImportError:
    if 'runnel' not in sys.modules:
        pkg = types.ModuleType('runnel'); pkg.__path__ = []; sys.modules['runnel'] = pkg
    spec = importlib.util.spec_from_file_location(
        'runnel.kernels', {str(REPO / 'kernels' / '__init__.py')!r},
        submodule_search_locations=[{str(REPO / 'kernels')!r}])
    mod = importlib.util.module_from_spec(spec); sys.modules['runnel.kernels'] = mod
    spec.loader.exec_module(mod)
"""


def _ensure_importable():
    try:
        importlib.import_module("runnel.kernels")
    except ImportError:
        exec(BOOTSTRAP, {})


_ensure_importable()
# Let test modules import reference.py / strategies.py whatever the import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))
