"""The layout holds: packages import only downward, and no two modules import each other at load time."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("embedder", "indexer", "training", "app")
# what each package may import from the others (app wires them together)
ALLOWED = {"embedder": set(), "indexer": {"embedder"}, "training": {"embedder"},
           "app": {"embedder", "indexer", "training"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules a file imports (absolute names), at load time only or anywhere (functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not top_level_only:
                    visit(child, True)
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never runs
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)  # `from . import x` names modules
            visit(child, in_function)

    visit(tree, False)
    return found


def project_files() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]


def test_packages_import_only_what_the_layering_allows():
    wrong = []
    for path in project_files():
        own = module_name(path).split(".")[0]
        for name in imports(path, top_level_only=False):
            other = name.split(".")[0]
            if other in PACKAGES and other != own and other not in ALLOWED[own]:
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    """Counting imports inside functions too: a lazy import back is still two modules that need each other.
    A package's __init__ (lazy re-exports) is not a node: importing it loads nothing else."""
    modules = {module_name(p): p for p in project_files()}
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph = {name: {m for m in imports(path, top_level_only=False) if m in modules and m not in packages | {name}}
             for name, path in modules.items() if name not in packages}
    cycles = set()
    for start in graph:  # a path from start back to itself
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.add(" -> ".join(trail + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    assert not cycles, "\n".join(sorted(cycles))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_parses(package):
    for path in (REPO / package).rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"))
