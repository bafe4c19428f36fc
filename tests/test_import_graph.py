"""The package's import graph, read from the source (function-local imports included), has no cycle.

A cycle hidden by a function-local import still ties two layers together: neither can be read, tested or
moved without the other (docs/architecture.md, "Layers"). A package is a node with the imports its
``__init__`` makes (``from sparsinglaw.metrics import x`` depends on everything ``metrics/__init__`` imports).
Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, so those packages are edges too, except
the importer's own packages (already running when it is imported): ``store.database`` importing
``laws.curve`` runs ``laws/__init__``, which imports ``laws.io``, which imports ``store.database`` back: a
cycle that fails at run time, though the modules named in the imports form none.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sparsinglaw"


def _module_names() -> dict[str, Path]:
    names = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, tree: ast.AST, known: set[str]) -> set[str]:
    """Modules of the package ``module`` imports anywhere in its source (``from a import b`` names the
    module ``a.b`` when that is a module, else ``a``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Edges module -> modules of the package it imports (see the module docstring)."""
    names = _module_names()
    graph = {}
    for name in sorted(names):
        tree = ast.parse(names[name].read_text(encoding="utf-8"))
        targets = _targets(name, tree, set(names))
        graph[name] = (targets | {p for t in targets for p in _packages(t, names)}) - _packages(name, names) - {name}
    return graph


def _packages(module: str, names: dict[str, Path]) -> set[str]:
    """The packages importing ``module`` runs first (its ancestors, the top one excluded: its face is lazy)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts))} & set(names)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    assert "sparsinglaw.report.html" in graph["sparsinglaw.study.runner"]  # inside run_study, when reporting
    assert "sparsinglaw.laws" in graph["sparsinglaw.study.paper_ref"]  # importing laws.io runs laws/__init__
    assert len(graph) > 100


def test_find_cycles_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (move the shared piece down a layer): " + "; ".join(
        " <-> ".join(c) for c in cycles)
