"""The import graph of src/, read with ast: no module imports another that imports it back, however far
round (function-level imports count too). The layers themselves are `lint-imports`' job (pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "bl_reservoir"


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its `__init__`)."""
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file. `from pkg import mod` is an import
    of `pkg.mod` when that is a module, else of `pkg`."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t in modules and t != name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert len(graph) > 60
    assert "bl_reservoir.io.fetch" in graph["bl_reservoir.io"]            # inside a function
    assert "bl_reservoir.io.header" in graph["bl_reservoir.io.observation"]  # from package import module
    assert "bl_reservoir.scale.outcomes" in graph["bl_reservoir.scale.engine"]


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["bl_reservoir.io.fetch"] = graph["bl_reservoir.io.fetch"] | {"bl_reservoir.storage"}  # storage -> io.fetch
    assert any({"bl_reservoir.io.fetch", "bl_reservoir.storage", "bl_reservoir.storage.buckets"} <= set(c)
               for c in cycles(graph))


def test_no_import_cycles_in_src():
    assert cycles(import_graph()) == []
