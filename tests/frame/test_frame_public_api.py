"""runnel.frame builds on the engine's public API only: no private name of another module is used from it.

Read from the source with ``ast``: an attribute ``x._name`` is allowed only
when some frame module defines ``_name`` itself (a function, class, method,
field or attribute it assigns); ``from other import _name`` is never allowed.
"""

from __future__ import annotations

import ast
import pathlib

FRAME = pathlib.Path(__file__).resolve().parents[2] / "src" / "runnel" / "frame"


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_in(trees) -> set[str]:
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if private(n)}


def foreign_privates(files: dict[str, str]) -> list[str]:
    trees = {name: ast.parse(src) for name, src in files.items()}
    own = defined_in(trees.values())
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in own:
                found.append(f"{name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.level != 1:   # not from runnel.frame itself
                found += [f"{name}:{node.lineno} import {a.name}" for a in node.names if private(a.name)]
    return found


def test_frame_uses_no_private_name_of_another_module():
    files = {p.name: p.read_text() for p in sorted(FRAME.glob("*.py"))}
    assert foreign_privates(files) == []


def test_the_check_finds_a_private_attribute_and_import():
    files = {"a.py": "from ..dataset import _hidden\n\ndef f(ds):\n    return ds._narrow(1), ds._own\n",
             "b.py": "class B:\n    def __init__(self):\n        self._own = 1\n"}
    assert foreign_privates(files) == ["a.py:1 import _hidden", "a.py:4 ._narrow"]
