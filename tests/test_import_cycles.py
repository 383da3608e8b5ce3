"""Imports flow one way (views → services → tasks → domain): no two of Shoal's modules import each
other, directly or around a loop.

The graph is read from the source, not from what Python happened to import: every `import` and
`from … import` of a Shoal module counts, inside functions too, since an import moved into a
function to dodge a cycle is still a cycle (it only fails later, at the first call). Imports under
`if TYPE_CHECKING:` do not run and are left out. `from a.b import c` is an edge to the module
`a.b.c` when there is one, else to `a.b`; a package's __init__ is not counted as imported by its
submodules, so a package that picks a backend module lazily is no cycle.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {".venv", "var", "static", "templates", "docs", "node_modules"}

# Cycles known when this test was written, being removed by work in progress elsewhere. Each
# entry is the set of modules of one cycle; an entry that no longer matches a cycle fails the test
# too, so that the list only ever shrinks. It is meant to be empty.
KNOWN_CYCLES: set[frozenset[str]] = set()


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name → file, for every Python file of the repository."""
    modules = {}
    for folder, subfolders, files in os.walk(root):
        # Not into data folders, the virtualenv or .git: they can be large, and hold no module of ours.
        subfolders[:] = [f for f in subfolders if f not in SKIPPED_FOLDERS and not f.startswith(".")]
        for file in files:
            if not file.endswith(".py"):
                continue
            parts = (Path(folder) / file).relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                modules[".".join(parts)] = Path(folder) / file
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imported_names(name: str, path: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of everything `name` imports, as written (absolute)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module → {module it imports: line of the first such import}, Shoal's modules only."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        for imported, line in imported_names(name, path):
            target = imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].setdefault(target, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(component: frozenset[str], graph: dict[str, dict[str, int]]) -> str:
    members = sorted(component)
    edges = [f"  {a} → {b} (line {graph[a][b]})" for a in members for b in sorted(graph[a]) if b in component]
    return "\n".join([", ".join(sorted(component)), *edges])


def test_no_module_imports_itself_around_a_loop():
    graph = import_graph(project_modules())
    found = cycles(graph)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "Import cycles (move the shared code down a layer):\n" + "\n".join(
        describe(c, graph) for c in new
    )
    fixed = KNOWN_CYCLES - set(found)
    assert not fixed, f"No longer cycles; remove them from KNOWN_CYCLES: {[sorted(c) for c in fixed]}"


def test_it_sees_a_cycle_hidden_in_a_function(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "services.py").write_text("def go():\n    from app.tasks import run\n")
    (tmp_path / "app" / "tasks.py").write_text("from app import services\n")
    (tmp_path / "app" / "views.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import services\n"
    )
    graph = import_graph(project_modules(tmp_path))
    assert cycles(graph) == [frozenset({"app.services", "app.tasks"})]
    assert graph["app.views"] == {}
