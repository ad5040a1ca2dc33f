"""The floors of docs/architecture.md, held against the code's own imports.

Every import counts — at module level, inside functions and under TYPE_CHECKING — because an
import moved into a function to dodge a circle is still a circle in the design. A module may
import from its own floor or any floor below; the modules of one distribution never form a
circle. The playground is a distribution of its own: it imports nothing of meshbot, and meshbot
reaches it only from the commands that serve it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first; docs/architecture.md says what lives on each.
FLOORS = ("core", "migrations", "mesh", "domain", "handlers", "bot")
# meshbot's commands that serve the playground import it lazily: it is not in meshbot's wheel.
PLAYGROUND_USERS = {"bot.cli.demo", "bot.cli.playground"}


def _package_dir(package: str) -> Path:
    src = ROOT / package / "src" / package
    return src if src.is_dir() else ROOT / package


def _modules(package: str) -> dict[str, Path]:
    base = _package_dir(package)
    found = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(base.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


ALL = {name: path for package in (*FLOORS, "playground") for name, path in _modules(package).items()}


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported first-party module, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield from _resolve(candidate if candidate in ALL else base, node.lineno)


def _resolve(name: str, line: int) -> Iterator[tuple[str, int]]:
    while name and name not in ALL:
        name = name.rpartition(".")[0]
    if name:
        yield name, line


def _floor(module: str) -> int | None:
    top = module.split(".")[0]
    return FLOORS.index(top) if top in FLOORS else None


GRAPH = {module: sorted(set(_imports(module, path))) for module, path in ALL.items()}


def test_the_floors_exist_and_hold_code() -> None:
    for package in (*FLOORS, "playground"):
        assert _modules(package), f"{package}/ has no modules"
    assert len(ALL) > 100


def test_no_import_runs_up_a_floor() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets
        if (low := _floor(module)) is not None and (high := _floor(target)) is not None and high > low
    ]
    assert upward == []


def test_meshbot_and_the_playground_stay_apart() -> None:
    crossing = [
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets
        if (module.startswith("playground") != target.startswith("playground"))
        and module not in PLAYGROUND_USERS
    ]
    assert crossing == []


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target, _line in GRAPH[module]:
            if target == module:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles() -> None:
    assert _circles() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from core.store import Store\n", {"core.store"}),
        ("from handlers import fault\n", {"handlers.fault"}),
        ("def f():\n    from bot.pipeline import Pipeline\n", {"bot.pipeline"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mesh.kube\n", {"mesh.kube"}),
        ("import os\nfrom sqlalchemy import select\n", set()),
    ],
)
def test_the_reader_sees_every_kind_of_import(tmp_path: Path, source: str, expected: set[str]) -> None:
    # The checks above are only as good as this reader: it must see function-level and
    # TYPE_CHECKING imports, and ignore third-party ones.
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert {target for target, _line in _imports("domain.probe", path)} == expected


def _third_party(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0], node.lineno


def test_only_mesh_talks_to_kubernetes() -> None:
    # Every call to the cluster goes through mesh/, where API errors become meshbot's own.
    outside = [
        f"{module}:{line} imports {name}"
        for module, path in ALL.items()
        if _floor(module) is not None and not module.startswith("mesh")
        for name, line in _third_party(path)
        if name in ("kubernetes", "urllib3")
    ]
    assert outside == []
