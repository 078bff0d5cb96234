"""No import cycle between the Python modules of any of our packages.

Every import counts, including the ones inside functions (a lazy import is the usual way a
cycle gets hidden); only imports under ``if TYPE_CHECKING:`` do not, since they never run.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    ROOT / "src" / "topozarr",
    ROOT / "packages" / "topozarr-plan" / "src" / "topozarr_plan",
    ROOT / "packages" / "topozarr-engine" / "src" / "topozarr_engine",
    ROOT / "packages" / "topozarr-metadata" / "src" / "topozarr_metadata",
]


def _module_names(package: Path) -> dict[str, Path]:
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all but those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)  # the else branch does run
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            todo.append(child)
    return found


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, names: dict[str, Path]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    # `from pkg import mod` imports the module pkg.mod (pkg itself is already imported, as it
    # is for any `pkg.x`); `from mod import name` imports mod.
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base for alias in node.names
    ]


def module_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    names = _module_names(package)
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, name, is_package, names):
                if target in names and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_import_cycle(package: Path) -> None:
    graph = module_graph(package)
    assert len(graph) > 3  # the walk found the package's modules
    assert find_cycle(graph) is None


def test_a_lazy_cycle_is_found_and_type_checking_imports_are_not(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.c import h\n"
        "def g():\n    from . import a\n"
    )
    (pkg / "c.py").write_text("import pkg.a\n")
    graph = module_graph(pkg)
    assert graph["pkg.b"] == {"pkg.a"}
    assert sorted(set(find_cycle(graph) or [])) == ["pkg.a", "pkg.b"]
    (pkg / "b.py").write_text("def g():\n    pass\n")
    assert find_cycle(module_graph(pkg)) is None
