"""Check mvface's layers: no import runs upward, and no two modules import each other.

mvface's packages form layers, lowest first (:data:`LAYERS`). A module may import modules of its
own package (``mvface.synth.pipeline`` → ``mvface.synth.rig``) and of any lower layer, never one
of its own layer's other packages nor of a higher layer. Every ``import`` statement counts:
module-level ones, those inside functions (a lazy import is still a dependency) and those under
``if TYPE_CHECKING:`` (no run-time effect, but the same conceptual dependency). Independently of
the layers, the module graph (every import, package ``__init__`` files included) has no cycle.

Only ``import`` statements are read (with :mod:`ast`, nothing is imported): a name imported by a
string (``importlib.import_module``) is invisible here. The two deprecated aliases of
``mvface.models`` (``blazeface``, ``face_detectors``) forward to :mod:`mvface.detection` that way.

Usage::

    python tools/check_layers.py [SRC_DIR]    # default: src/ next to tools/; exit 1 on a problem
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

#: mvface's layers, lowest first. Each entry is one layer: its packages (the part of a module's
#: name after ``mvface.``; top-level modules by their file name) are independent of each other.
#: ``mvface`` itself (the package ``__init__``: ``mvface.load``, ``mvface.list_models``) is the top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_version"),  # the failure contract; the version string
    ("_io", "_registry"),  # atomic writes and input checks; the one name-registry type
    ("geometry",),  # cameras, projection, triangulation, rotations, head pose: tensor maths
    ("data",),  # records, landmark schemes, images, dataset readers
    ("models",),  # landmark networks, their weights, crop policies (boxes)
    ("detection",),  # face detectors (they use models' boxes and weight loaders)
    ("api", "export", "plugin", "eval"),  # mvface.load(); ONNX export; the loss; metrics
    ("viz",),  # overlays and comparison figures (captions use eval's metrics)
    ("synth", "train"),  # synthetic multiview data; training, fine-tuning, head fitting
    ("demo", "detect", "bench"),  # demo pages; ``mvface detect`` on files; benchmarks
    ("cli",),  # the typer commands: thin, over everything below
    ("__main__", ""),  # ``python -m mvface``; the package facade (``""``: ``mvface`` itself)
)

ROOT = "mvface"


class Import(NamedTuple):
    """One ``import`` of an mvface module by another, as written in the source."""

    importer: str  # dotted module name, e.g. "mvface.eval.runner"
    imported: str  # dotted module name the statement loads (longest existing module)
    path: Path
    line: int
    kind: str  # "module" (runs on import), "function" (inside a def) or "type-checking"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({self.kind})"


def module_files(src: Path, root: str = ROOT) -> dict[str, Path | None]:
    """Dotted module name → file, for every ``.py`` below ``src/<root>`` (packages by ``__init__``).

    A folder without ``__init__.py`` (a namespace package, such as ``mvface.cli``) maps to
    ``None``: importable, with no code of its own.
    """
    modules: dict[str, Path | None] = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
        for end in range(1, len(parts)):
            modules.setdefault(".".join(parts[:end]), None)
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                inside.update(id(n) for n in ast.walk(stmt))
    return inside


def _function_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside function bodies (run when called, not at import)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    return inside


def _resolve(name: str, modules: dict[str, Path | None]) -> str | None:
    """The longest prefix of ``name`` that is a module (``a.b.func`` → ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, modules: dict[str, Path | None], root: str = ROOT) -> Iterator[Import]:
    """Every import of a ``root`` module in ``module``'s source (self-imports left out)."""
    path = modules[module]
    if path is None:  # a namespace package: no source
        return
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    type_checking, in_function = _type_checking_nodes(tree), _function_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # "from pkg import name": the submodule pkg.name when there is one, else pkg itself
            names = [
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                for alias in node.names
            ]
        else:
            continue
        kind = (
            "type-checking"
            if id(node) in type_checking
            else "function"
            if id(node) in in_function
            else "module"
        )
        found = set()
        for name in names:
            if name != root and not name.startswith(root + "."):
                continue
            imported = _resolve(name, modules)
            if imported and imported != module and imported not in found:
                found.add(imported)
                yield Import(module, imported, path, node.lineno, kind)


def package_of(module: str) -> str:
    """The layer entry of a module: ``mvface.synth.rig`` → ``synth``; ``mvface`` → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_index(layers: Sequence[Sequence[str]]) -> dict[str, int]:
    """Package → its layer's position (0 = lowest)."""
    return {package: i for i, layer in enumerate(layers) for package in layer}


def upward_imports(
    imports: Sequence[Import],
    layers: Sequence[Sequence[str]] = LAYERS,
) -> list[str]:
    """Each import into the same or a higher layer than its importer's (another package), one
    line each; packages missing from ``layers`` are left to :func:`check`."""
    rank = layer_index(layers)
    problems = []
    for imp in imports:
        mine, theirs = package_of(imp.importer), package_of(imp.imported)
        if mine == theirs or mine not in rank or theirs not in rank:
            continue
        if rank[theirs] > rank[mine]:
            problems.append(f"{imp}: upward, layer {rank[mine]} → {rank[theirs]}")
        elif rank[theirs] == rank[mine]:
            problems.append(f"{imp}: {mine} and {theirs} share layer {rank[mine]}, independent")
    return list(dict.fromkeys(problems))


def import_cycles(imports: Sequence[Import]) -> list[list[str]]:
    """The strongly connected groups of more than one module (each a set of import cycles)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
        graph.setdefault(imp.imported, set())
    # Tarjan's algorithm, iterative (no recursion limit on deep graphs)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


def all_imports(src: Path, root: str = ROOT) -> list[Import]:
    """Every mvface-internal import below ``src/<root>``."""
    modules = module_files(src, root)
    return [imp for module in modules for imp in imports_of(module, modules, root)]


def check(src: Path, layers: Sequence[Sequence[str]] = LAYERS, root: str = ROOT) -> list[str]:
    """All problems of the tree below ``src/<root>``, one line each (empty: the layers hold)."""
    rank = layer_index(layers)
    problems = [
        f"{path}: {module} is in no layer (add {package_of(module)!r} to LAYERS)"
        for module, path in module_files(src, root).items()
        if path is not None and package_of(module) not in rank
    ]
    imports = all_imports(src, root)
    problems += upward_imports(imports, layers)
    for group in import_cycles(imports):
        edges = [f"{i.importer} → {i.imported} ({i.path.name}:{i.line})" for i in imports
                 if i.importer in group and i.imported in group]  # fmt: skip
        problems.append("import cycle: " + "; ".join(edges))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=Path(__file__).parents[1] / "src")
    args = parser.parse_args(argv)
    problems = check(args.src)
    for line in problems:
        print(line)
    if not problems:
        print(f"layers hold: {len(all_imports(args.src))} imports, no cycle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
