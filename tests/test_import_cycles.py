"""No import cycles inside lmtpd/: every import, at the top or inside a function, is an arrow.

A cycle makes the order of imports matter and hides which module is the lower one; a lazy
import inside a function only hides the cycle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "lmtpd"

# Cycles allowed for now, each with the reason; there are none, keep it that way.
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The lmtpd modules ``module`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                # "from pkg import sub" imports the module pkg.sub when there is one
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in known else source)
    return {name for name in found if name in known and name != module}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = "def f() -> None:\n    from .b import thing\n"
    path = tmp_path / "a.py"
    path.write_text(source)
    tree_found = imports_of("lmtpd.x.a", path, {"lmtpd.x.a", "lmtpd.x.b"})
    assert tree_found == {"lmtpd.x.b"}


def test_cycle_finder_names_the_modules() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_covers_lmtpd() -> None:
    edges = graph()
    assert "lmtpd.sieve.compile" in edges
    assert "lmtpd.sieve.parser" in edges["lmtpd.sieve.compile"]


def test_no_import_cycles_in_lmtpd() -> None:
    found = cycles(graph())
    unexpected = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    if unexpected:
        pytest.fail("import cycles: " + "; ".join(" <-> ".join(c) for c in unexpected))
