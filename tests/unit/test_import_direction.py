"""The product's packages import one way, with no cycle between modules (function-level
imports included): a lower room never reaches into a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Each product package, and the project packages it may import.
ALLOWED = {
    "settings": set(),
    "observability": {"settings"},
    "notifier": {"settings"},
    "integrations": {"settings"},
    "streaming": {"settings", "observability", "notifier"},
    "fulfillment": {"settings", "notifier", "integrations"},
    "tasks": {"settings", "observability", "notifier", "integrations", "fulfillment"},
    "listener": {"settings", "observability", "notifier", "integrations", "fulfillment", "tasks"},
    "app": {
        "settings", "observability", "notifier", "integrations", "streaming", "fulfillment",
        "tasks", "listener",
    },
}  # fmt: skip
PROJECT = {*ALLOWED, "sandbox", "bench", "tests"}


def modules() -> dict[str, Path]:
    found = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Project modules `name` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PROJECT}


def test_packages_import_only_the_rooms_below_them() -> None:
    wrong = {
        (name, target)
        for name, path in modules().items()
        for target in imports_of(name, path)
        if target.split(".")[0] != name.split(".")[0]
        and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    }
    assert wrong == set()


def test_no_module_imports_itself_back() -> None:
    known = modules()
    graph = {
        name: {t for t in imports_of(name, path) if t in known and t != name}
        for name, path in known.items()
    }
    # A module importing its own package's __init__ is not a cycle of behaviour.
    for name in graph:
        graph[name] -= {name.rsplit(".", 1)[0]} if "." in name else set()
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
