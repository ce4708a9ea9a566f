"""Imports inside minicnn run one way: no module imports, even lazily in a function, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import minicnn

PACKAGE = Path(minicnn.__file__).parent


def module_name(path: Path) -> str:
    """minicnn/layers/conv.py -> "minicnn.layers.conv"; minicnn/layers/__init__.py -> "minicnn.layers"."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` ("minicnn.layers.conv") is a module or package of minicnn (not a name inside one)."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """The minicnn modules ``path`` imports anywhere in its code (at the top or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("minicnn")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minicnn"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                # "from minicnn import layers" imports a module; "from minicnn.layers import Conv2D" a name in one
                found.add(submodule if is_module(submodule) else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}
    return {name: {target for target in targets if target != name} for name, targets in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (a depth-first search)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[name] = "done"
        path.pop()
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_the_search_finds_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_there_is_no_import_cycle_in_minicnn():
    graph = import_graph()
    assert "minicnn.saving" in graph and "minicnn.model" in graph["minicnn.saving"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_model_writes_files_through_files_py_and_never_imports_saving():
    graph = import_graph()
    assert "minicnn.files" in graph["minicnn.model"]
    assert "minicnn.saving" not in graph["minicnn.model"]
    assert not (PACKAGE / "io.py").exists() and not (PACKAGE / "functions.py").exists()
