"""The shape of the code: layers point down, no import cycles, a thin CLI, small modules.

Every ``import`` and ``from ... import`` of a sparring module counts, at module level or
inside a function (a lazy import is still a dependency), so the graph is the one a reader
follows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import sparring

SRC = Path(sparring.__file__).parent
MAX_LINES = 400
LONG_MODULE_NOTE = "# Longer than 400 lines because"
"""A module over MAX_LINES says why in a comment starting with this."""

# Top to bottom; a module may import its own layer and the layers below it. This departs
# from ARCHITECTURE.md in one place: judges sit below the engine, because the engine's
# executor asks judges for verdicts, while a judge only needs the model it is handed.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        "cli",
        "api",
        "scan dart redteam defenses doctor testing view",
        "attacks report train",
        "engine",
        "judges",
        "models",
        "data store metrics text",
        "stats types errors paths version registry config_files __init__",
    )
)


def module_name(path: Path) -> str:
    parts = ["sparring", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in SRC.rglob("*.py")}


def resolve(name: str) -> str:
    """The module a dotted name lives in (a name imported from a module is not one)."""
    known = modules()
    while name not in known:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(modules()[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names if a.name.startswith("sparring")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sparring"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules() else resolve(str(node.module)))
    found.discard(module)
    return found


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    name = package(module)
    return next(i for i, names in enumerate(LAYERS) if name in names)


def test_every_package_has_a_layer() -> None:
    placed = set().union(*LAYERS)
    assert {package(m) for m in modules()} <= placed


def test_the_cli_imports_nothing_but_the_api() -> None:
    for module in modules():
        if package(module) == "cli":
            outside = {m for m in imports_of(module) if package(m) not in ("cli", "api")}
            assert not outside, f"{module} imports {sorted(outside)}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} -> {target}"
        for module in modules()
        for target in imports_of(module)
        if layer(target) < layer(module)
    ]
    assert not upward


def strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's components of ``graph`` with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                yield from visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                yield sorted(component)

    for node in sorted(graph):
        if node not in index:
            yield from visit(node)


def test_there_are_no_import_cycles() -> None:
    graph = {module: imports_of(module) for module in modules()}
    assert list(strongly_connected(graph)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(strongly_connected(graph)) == [["a", "b", "c"]]


def test_no_module_is_long_without_saying_why() -> None:
    long = [
        f"{path.relative_to(SRC)}: {n} lines"
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and LONG_MODULE_NOTE not in path.read_text(encoding="utf-8")
    ]
    assert not long
