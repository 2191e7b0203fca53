"""No import cycles above the kernels.

The import graph of runnel's modules is built from their source with
``ast``: every ``import`` counts, at module level or inside a function (a
function-local import that dodges a cycle is still a cycle), except those
under ``if TYPE_CHECKING:``. Then its strongly connected components are the
cycles.
"""

from __future__ import annotations

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Cycles that are known debts, each a group no other module may join:
#: - the DStream API: DStream's methods (map, window, update_state_by_key, save_*) build operator
#:   classes that subclass or wrap DStream (to_frame and with_watermark reach the frame layer through
#:   the context's ``ssc.frame``, not by importing it: no DStream module is in a cycle with a frame one);
#: - the frame: StreamingDataFrame's methods build the operators' frames (groupby, windows, dedup, joins),
#:   whose results are StreamingDataFrames; the frame expressions and their accessors (.str, .dt) build
#:   each other;
#: - the executors: base.py picks an executor by master string and the executors subclass its base.
KNOWN = [
    ("runnel.sinks", "runnel.pyspark.context", "runnel.pyspark.sql", "runnel.dstream."),
    ("runnel.frame.",),
    ("runnel.executors.",),
]


def within(comp: set[str], known: tuple[str, ...]) -> bool:
    """Every module of ``comp`` is one of ``known`` (a name, or a package prefix ending in a dot)."""
    return all(m in known or m.startswith(tuple(k for k in known if k.endswith("."))) for m in comp)

#: The layers that must be in no cycle at all: the driver, the scheduler, checkpoints, the planner.
ACYCLIC = ("runnel.streaming", "runnel.graph", "runnel.testing", "runnel.scheduler", "runnel.checkpoint",
           "runnel.listener", "runnel.plan", "runnel.clock", "runnel.kernels", "runnel.ui", "runnel._version",
           "runnel.context", "runnel.dataset", "runnel.partfiles")


def modules(src: pathlib.Path, kernels: pathlib.Path | None) -> dict[str, tuple[pathlib.Path, bool]]:
    """Module name -> (file, is a package) for every module under ``src/runnel`` (and ``kernels``)."""
    found = {}
    roots = [(src, [])] + ([(kernels, ["runnel", "kernels"])] if kernels is not None else [])
    for root, prefix in roots:
        for path in root.rglob("*.py"):
            parts = prefix + list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return found


def import_graph(mods: dict[str, tuple[pathlib.Path, bool]]) -> dict[str, set[str]]:
    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
        package = name if is_pkg else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                edges.update(known(a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module
                for a in node.names:   # `from pkg import module` imports the module itself
                    edges.add(known(f"{full}.{a.name}") if f"{full}.{a.name}" in mods else known(full))
        edges.discard(None)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def runnel_cycles() -> list[set[str]]:
    return cycles(import_graph(modules(ROOT / "src", ROOT / "kernels")))


def describe(comp: set[str], graph: dict[str, set[str]]) -> str:
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & comp))}" for m in sorted(comp))


def test_the_driver_scheduler_checkpoints_and_planner_are_in_no_import_cycle():
    graph = import_graph(modules(ROOT / "src", ROOT / "kernels"))
    for comp in cycles(graph):
        caught = sorted(m for m in comp if m.startswith(ACYCLIC))
        assert not caught, f"{caught} in an import cycle: {describe(comp, graph)}"


def test_no_import_cycle_but_the_known_ones():
    graph = import_graph(modules(ROOT / "src", ROOT / "kernels"))
    for comp in cycles(graph):
        assert any(within(comp, known) for known in KNOWN), f"a new import cycle: {describe(comp, graph)}"


def test_the_scheduler_core_imports_nothing_of_the_engine():
    graph = import_graph(modules(ROOT / "src", ROOT / "kernels"))
    assert graph["runnel.scheduler.core"] == set()


def test_the_check_finds_a_cycle_through_a_function_local_import(tmp_path):
    pkg = tmp_path / "runnel"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
                              "def g():\n    from . import a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n")
    graph = import_graph(modules(tmp_path, None))
    assert graph["runnel.d"] == set()
    assert cycles(graph) == [{"runnel.a", "runnel.sub.b", "runnel.c"}]
