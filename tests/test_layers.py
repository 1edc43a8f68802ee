"""The package's layout is its architecture: no import circles, no import from a lower layer up.

Read from the source (``ast``), so the test needs no import of kgrec and sees lazy imports
inside functions too. A new module goes in the lowest layer whose imports it needs; the table
below is the map (docs/architecture.md explains each layer).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kgrec"

#: layer of each top-level module or sub-package; a module may import only from its own layer
#: or lower ones. ``kgrec`` itself (the facade in ``__init__``) sits above the library.
LAYERS: dict[str, int] = {
    # 0: foundations, no kgrec imports beyond each other
    "version": 0, "errors": 0, "io": 0, "device": 0, "config": 0,
    # 1: reading the user's files
    "ingest": 1,
    # 2: the heterogeneous graph and its storage
    "graph": 2,
    # 3: what is computed on a graph: text features, splits and metrics, models, data sets
    "text": 3, "eval": 3, "models": 3, "datasets": 3,
    # 4: training, and the one configuration check (it knows the models, losses and steps)
    "train": 4, "experiment": 4,
    # 5: uses of a trained model that need no run folder
    "explain": 5, "similar": 5, "coldstart": 5, "export": 5,
    # 6: the run: train one, load one, every question asked of it
    "runs": 6,
    # 7: benchmarks over runs
    "bench": 7,
    # 8: the command line
    "cli": 8, "__main__": 9, "__init__": 9,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """kgrec modules imported by the module at ``path`` (absolute and relative imports)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "kgrec")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "kgrec":
                continue
            found.add(module)
            for alias in node.names:  # `from kgrec.models import gnn` imports a module too
                found.add(f"{module}.{alias.name}")
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (annotations only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{module}: its top-level name {top!r} has no layer in tests/test_layers.py"
    return top, LAYERS[top]


def test_every_module_has_a_layer():
    for module in _graph():
        _layer(module)


def test_no_import_goes_up_a_layer():
    upward = []
    for module, imported in _graph().items():
        top, rank = _layer(module)
        for other in imported:
            other_top, other_rank = _layer(other)
            if other_rank > rank:
                upward.append(f"{module} (layer {rank}) imports {other} (layer {other_rank})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circles():
    graph = _graph()
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above can fail: a made-up package with both faults."""
    pkg = tmp_path / "kgrec"
    (pkg / "graph").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "graph" / "__init__.py").write_text("")
    (pkg / "graph" / "a.py").write_text("from kgrec.graph import b\nfrom kgrec.cli import main\n")
    (pkg / "graph" / "b.py").write_text("from . import a\n")
    (pkg / "cli.py").write_text("")
    import sys

    me = sys.modules[__name__]
    monkeypatch.setattr(me, "PACKAGE", pkg)
    import pytest

    with pytest.raises(AssertionError, match="kgrec.graph.a .layer 2. imports kgrec.cli .layer 8."):
        test_no_import_goes_up_a_layer()
    with pytest.raises(AssertionError, match="kgrec.graph.a <-> kgrec.graph.b"):
        test_no_import_circles()
