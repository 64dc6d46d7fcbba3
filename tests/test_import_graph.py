"""The import graph of ``hfcontrol`` and ``plants``, read from the source (``ast``): no
cycles, and ``plants`` never imports ``hfcontrol``. Imports inside functions count too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hfcontrol", "plants")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that module ``name`` imports."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            # ``from pkg import name``: name is a submodule or an attribute of pkg
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # the module itself, or the nearest enclosing project module
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph):
    """A cycle as a list of modules, or None (depth-first search)."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _is_package_import(child: str, parent: str) -> bool:
    """A module importing its own package's ``__init__`` (for a sibling) is no cycle of
    modules: Python runs the ``__init__`` first. Such edges are left out."""
    return child.startswith(parent + ".")


def test_no_import_cycles():
    graph = _graph()
    assert "hfcontrol.ffnet" in graph and "plants.arms" in graph  # the walk found the code
    pruned = {name: {t for t in targets if not _is_package_import(name, t)}
              for name, targets in graph.items()}
    cycle = _cycle(pruned)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_plants_never_imports_hfcontrol():
    bad = {name: sorted(t for t in targets if t.split(".")[0] == "hfcontrol")
           for name, targets in _graph().items() if name.split(".")[0] == "plants"}
    bad = {name: targets for name, targets in bad.items() if targets}
    assert not bad, f"plants modules import hfcontrol: {bad}"


def test_the_checker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
