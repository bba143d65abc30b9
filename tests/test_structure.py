"""The architecture, checked: the file format knows nothing of `AdaptedModel`, no import cycle
among spadapt's modules (function-level imports included), and no module imports another's
private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import spadapt

PACKAGE = Path(spadapt.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["spadapt", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> dict[str, set[tuple[str, str | None]]]:
    """module -> {(imported spadapt module, imported name or None)}, every import statement
    anywhere in the file (inside functions too) but under `if TYPE_CHECKING:` (never run);
    `from X import y` where y is a submodule counts as importing X.y."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[tuple[str, str | None]]] = {}
    for module, path in modules.items():
        found: set[tuple[str, str | None]] = set()
        tree = ast.parse(path.read_text(), str(path))
        type_checking = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                         and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                         for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in type_checking:
                continue
            if isinstance(node, ast.Import):
                found |= {(a.name, None) for a in node.names if a.name.startswith("spadapt")}
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, path.name == "__init__.py", node)
                if not target.startswith("spadapt"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add((sub, None) if sub in modules else (target, alias.name))
        out[module] = found
    return out


def _graph() -> dict[str, set[str]]:
    """module -> the spadapt modules importing it runs. A package a module is inside has run
    before the module, so importing from it (`from . import __version__`) is no edge."""
    imports = _imports()
    graph = {m: {t for t, _ in found if t in imports and t != m and not m.startswith(t + ".")}
             for m, found in imports.items()}
    for module in graph:  # importing a.b.c runs a/__init__ and a/b/__init__ first, unless
        for target in list(graph[module]):  # the importer is inside them (they run already)
            parts = target.split(".")
            graph[module] |= {package for package in (".".join(parts[:i])
                                                      for i in range(2, len(parts)))
                              if not module.startswith(package + ".") and package != module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_spadapt_modules() -> None:
    graph = _graph()
    assert len(graph) > 50 and "spadapt.storage" in graph["spadapt.model"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _private(name: str | None) -> bool:
    return name is not None and name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_modules_private_names() -> None:
    private = sorted(f"{module} imports {target}.{name}"
                     for module, found in _imports().items() for target, name in found
                     if _private(name) and target != module)
    for path in sorted((PACKAGE.parents[1] / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spadapt"):
                private += [f"{path.name} imports {node.module}.{a.name}"
                            for a in node.names if _private(a.name)]
    assert private == []


def test_importing_storage_does_not_import_the_model() -> None:
    code = ("import sys, spadapt.storage, spadapt.fingerprint; "
            "print(sorted(m for m in sys.modules if m in "
            "('spadapt.model', 'spadapt.methods', 'spadapt.masks')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_storage_reads_no_adapted_model_internals() -> None:
    """storage.py names no `AdaptedModel` helper (`model._build`, `_require`, ...)."""
    tree = ast.parse((PACKAGE / "storage.py").read_text())
    private_attributes = sorted({node.attr for node in ast.walk(tree)
                                 if isinstance(node, ast.Attribute)
                                 and node.attr.startswith("_") and not node.attr.startswith("__")})
    assert private_attributes == []


def test_the_config_accepts_exactly_the_registered_scorers_schedules_and_methods() -> None:
    """`spadapt.config` is a leaf below the registries, so it names their keys itself."""
    from spadapt.config import METHOD_NAMES, SCHEDULE_NAMES, SCORER_NAMES
    from spadapt.masks import SCHEDULES, SCORERS
    from spadapt.methods import METHODS

    assert set(SCORER_NAMES) == set(SCORERS) and set(SCHEDULE_NAMES) == set(SCHEDULES)
    assert set(METHOD_NAMES) == set(METHODS)
