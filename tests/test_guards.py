"""Guards: the shape of the code, read from its syntax trees (no imports, no servers). Plugins never
import the core, the core's modules import each other without a cycle, and no function is longer than
80 lines. ``ruff check .`` (run by ``make test``) guards the lines themselves; see docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "gobot"
MAX_FUNCTION_LINES = 80
# Alembic revisions are history, generated once; their upgrade() is as long as the schema it creates.
NOT_MEASURED = (ROOT / "plugins" / "archiver" / "migrations",)


def python_files(*folders: Path, skip: tuple[Path, ...] = ()) -> Iterator[Path]:
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            hidden = any(part.startswith(".") or part in ("build", "__pycache__") for part in parts)
            if not hidden and not any(path.is_relative_to(excluded) for excluded in skip):
                yield path


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


# -- plugins import the contract, never the core ------------------------------------------------


def imported_names(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Every absolute import in the module, wherever it stands: at the top, inside a function, under
    ``if TYPE_CHECKING:`` or as ``importlib.import_module("...")`` with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, node.module
        elif isinstance(node, ast.Call) and call_name(node.func) in ("import_module", "__import__") and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node, node.args[0].value


def call_name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def is_core(module: str) -> bool:
    return module == "gobot" or module.startswith("gobot.")


def test_plugins_and_examples_never_import_the_core():
    offenders = [
        f"{where(path, node)} imports {module}"
        for path in python_files(ROOT / "plugins", ROOT / "examples")
        for node, module in imported_names(parse(path))
        if is_core(module)
    ]
    if offenders:
        pytest.fail(
            "a plugin imports only the contract (gobot_hookspecs) and third-party libraries; what it needs from the "
            "core reaches it through hook arguments or a protocol of the contract:\n  " + "\n  ".join(offenders),
            pytrace=False,
        )


def test_the_import_guard_sees_every_kind_of_import():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import gobot_hookspecs\n"
        "if TYPE_CHECKING:\n"
        "    from gobot.run.bot import Bot\n"
        "def f():\n"
        "    import gobot.config\n"
        "    return importlib.import_module('gobot.ops')\n"
        "from . import gobot\n"
    )
    found = [module for _, module in imported_names(ast.parse(source)) if is_core(module)]
    assert found == ["gobot.run.bot", "gobot.config", "gobot.ops"]


# -- the core's modules import each other without a cycle -------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_targets(module: str, is_package: bool, tree: ast.Module, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module of ``known``) for each import of the tree, type-only and function-level ones included.
    ``from package import name`` counts as an import of ``package.name`` when that is a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from [(node.lineno, alias.name)] if alias.name in known else []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known]
            if submodules:
                yield from ((node.lineno, name) for name in submodules)
            if source in known and len(submodules) < len(node.names):
                yield node.lineno, source


def core_import_graph() -> dict[str, dict[str, int]]:
    """gobot module -> {gobot module it imports: line of the first such import}."""
    paths = {module_name(path): path for path in python_files(CORE)}
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        edges: dict[str, int] = {}
        for line, target in import_targets(module, path.name == "__init__.py", parse(path), set(paths)):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], set[str]]]:
    """For each group of modules that reach each other (a strongly connected component, found with
    Tarjan's algorithm): one cycle through it (a -> b -> a) and the whole group. Shortest cycles first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(((shortest_cycle(graph, group), group) for group in groups), key=lambda found: len(found[0]))


def shortest_cycle(graph: dict[str, dict[str, int]], group: set[str]) -> list[str]:
    """The shortest path from the group's first module back to itself, inside the group (breadth first)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if target in group and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(group)}")


def describe(graph: dict[str, dict[str, int]], cycle: list[str], group: set[str]) -> str:
    """``a -> b -> a   (a line 12, b line 40)``; when the group holds more modules, every import inside it,
    so one reading shows which imports to cut."""
    steps = " -> ".join(cycle)
    lines = ", ".join(f"{a} line {graph[a][b]}" for a, b in zip(cycle, cycle[1:]))
    if group == set(cycle):
        return f"{steps}   ({lines})"
    inside = [f"{a} -> {b} (line {graph[a][b]})" for a in sorted(group) for b in sorted(graph[a]) if b in group]
    return f"{steps}   ({lines}); the knot, {len(group)} modules:\n      " + "\n      ".join(inside)


def test_the_core_has_no_import_cycle():
    graph = core_import_graph()
    assert len(graph) > 20 and graph["gobot.cli.optimize"], "the guard found no modules under gobot/"
    cycles = find_cycles(graph)
    if cycles:
        pytest.fail(
            "modules of gobot/ import each other in a circle (imports inside functions and under TYPE_CHECKING "
            "count): move the shared piece down to a module both can import, or into the contract:\n  "
            + "\n  ".join(describe(graph, cycle, group) for cycle, group in cycles),
            pytrace=False,
        )


def test_the_cycle_guard_resolves_relative_and_submodule_imports():
    known = {"gobot", "gobot.run", "gobot.run.bot", "gobot.run.state", "gobot.ops.status", "gobot.ops"}
    source = (
        "from . import state\nfrom .state import load\nfrom ..ops import status\nfrom gobot.ops import WEB\n"
        "def f():\n    import gobot.run.bot\n"
    )
    targets = [name for _, name in import_targets("gobot.run.bot", False, ast.parse(source), known)]
    assert targets == ["gobot.run.state", "gobot.run.state", "gobot.ops.status", "gobot.ops", "gobot.run.bot"]
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert find_cycles(graph) == [(["a", "b", "c", "a"], {"a", "b", "c"})]
    assert describe(graph, ["a", "b", "c", "a"], {"a", "b", "c"}) == "a -> b -> c -> a   (a line 1, b line 2, c line 3)"
    graph["b"]["a"] = 5
    assert find_cycles(graph) == [(["a", "b", "a"], {"a", "b", "c"})]
    assert describe(graph, ["a", "b", "a"], {"a", "b", "c"}).splitlines() == [
        "a -> b -> a   (a line 1, b line 5); the knot, 3 modules:",
        "      a -> b (line 1)", "      b -> a (line 5)", "      b -> c (line 2)", "      c -> a (line 3)",
    ]


# -- no function over 80 lines --------------------------------------------------------------


def long_functions(paths: Iterator[Path]) -> list[str]:
    offenders = []
    for path in paths:
        for node in ast.walk(parse(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    offenders.append(f"{where(path, node)} {node.name} ({length} lines)")
    return offenders


def test_no_function_is_longer_than_80_lines():
    measured = python_files(CORE, ROOT / "plugins", ROOT / "hookspecs", skip=NOT_MEASURED)
    offenders = long_functions(measured)
    if offenders:
        pytest.fail(
            f"functions over {MAX_FUNCTION_LINES} lines (from `def` to the last line, decorators apart, nested "
            "functions measured on their own too); split each into well-named steps:\n  " + "\n  ".join(offenders),
            pytrace=False,
        )
