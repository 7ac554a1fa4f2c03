"""The package's import graph: circles and imports that point from a lower layer up to a higher one.

    python benchmarks/import_graph.py

Every ``import`` and ``from ... import`` in ``ase_xanesgen`` counts, at module top or inside a function. Layers,
lowest first: the bottom (``checks``, ``device``, ``geometry``, ``weights``) -> ``data`` -> ``graph`` -> ``nn`` ->
``diffusion`` -> ``guidance`` -> ``frontends`` -> ``cli`` (with the package's ``__init__`` and ``__main__``).
Beside them, ``analysis`` may import the bottom, ``data`` and ``graph``; ``train`` the bottom, ``data``,
``graph``, ``nn`` and ``diffusion``; ``weights.ship`` (the tool that ships a checkpoint) the bottom and ``nn``.
Prints one line per circle and per upward import; exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "ase_xanesgen"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
CHAIN = ("bottom", "data", "graph", "nn", "diffusion", "guidance", "frontends", "cli")
#: layer -> the layers it may import (itself included)
ALLOWED = {layer: set(CHAIN[: k + 1]) for k, layer in enumerate(CHAIN)}
ALLOWED["cli"] |= {"analysis", "train", "ship"}
ALLOWED["analysis"] = {"bottom", "data", "graph", "analysis"}
ALLOWED["train"] = {"bottom", "data", "graph", "nn", "diffusion", "train"}
ALLOWED["ship"] = {"bottom", "nn", "ship"}


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside the package."""
    parts = module.split(".")[1:]
    if module == f"{PACKAGE}.weights.ship":
        return "ship"
    if not parts or parts[0] == "__main__":
        return "cli"
    if parts[0] in ("checks", "device", "geometry", "weights"):
        return "bottom"
    return parts[0]


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the package (a package is named by its ``__init__``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``name`` (file ``path``) imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import sub` imports the module pkg.sub where one exists, else a name of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import ase_xanesgen.data.spectra.x` -> the module
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(importer, imported)`` pairs where the imported module's layer is not one the importer may use."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b) not in ALLOWED[layer_of(a)])


def main() -> int:
    graph = import_graph()
    found, upward = circles(graph), upward_imports(graph)
    for component in found:
        print("circle:", " <-> ".join(component))
    for a, b in upward:
        print(f"upward: {a} ({layer_of(a)}) imports {b} ({layer_of(b)})")
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} circles, "
          f"{len(upward)} upward imports")
    return 1 if found or upward else 0


if __name__ == "__main__":
    sys.exit(main())
