"""The tooling's modules import each other in one direction only: no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import PROJECT_TEMPLATE

TOOLING = PROJECT_TEMPLATE / "tooling"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_TEMPLATE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = PROJECT_TEMPLATE.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(tree: ast.AST) -> set[str]:
    """The tooling modules a module imports, anywhere (lazy imports too), but for type checks."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tooling")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tooling"):
            module = str(node.module)
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if is_module(child) else module)
        pending.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(TOOLING.rglob("*.py")):
        name = module_name(path)
        graph[name] = imported(ast.parse(path.read_text(encoding="utf-8"))) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_the_tooling_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 20  # every module was read
    assert cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected
