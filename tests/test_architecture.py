"""The layering contract (docs/architecture.md), checked on the source with ``ast``.

Layers, top to bottom; a module may import its own package and the layers below it, never a layer above
and never a sibling on its own layer::

    cli
    pipeline
    report
    bench
    feedback
    personas | prompts
    census
    llm | data
    core
    (the root package: only the version)

Also: no import cycle between modules; no internal import inside a function (they hide the dependency
graph; lazy imports are for heavy third-party libraries only); typer only in ``cli``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import persona_testbed

PKG = "persona_testbed"
SRC = Path(persona_testbed.__file__).parent
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"pipeline"},
    {"report"},
    {"bench"},
    {"feedback"},
    {"personas", "prompts"},
    {"census"},
    {"llm", "data"},
    {"core"},
    {""},  # the root package: the version only
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
#: the only internal imports allowed inside a function: modules that wrap a heavy third-party library
#: (the llama.cpp bindings load a native library; the OpenAI SDK takes ~0.3 s to import), loaded when a
#: model string first needs them
LAZY_WRAPPERS = {f"{PKG}.llm.backends.llamacpp", f"{PKG}.llm.backends.openai_compat"}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = [PKG, *path.relative_to(SRC).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _target(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """``(imported internal module, line, inside a function)`` for every import of ``module``
    (``if TYPE_CHECKING:`` blocks skipped: they are not run)."""
    path, is_pkg = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.ImportFrom):
            target = _target(module, is_pkg, node)
            if target == PKG or target.startswith(PKG + "."):
                for alias in node.names:  # ``from . import x`` imports the module ``x``
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in MODULES else target, node.lineno, in_function))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PKG or alias.name.startswith(PKG + "."):
                    found.append((alias.name, node.lineno, in_function))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    assert {_package(m) for m in MODULES} <= set(RANK), (
        "add the new package to LAYERS and docs/architecture.md"
    )


def test_imports_point_down_only():
    bad = []
    for module in MODULES:
        own = _package(module)
        for target, line, _ in _imports(module):
            other = _package(target)
            if other == own:
                continue
            if RANK[other] <= RANK[own]:
                bad.append(f"{MODULES[module][0].relative_to(SRC)}:{line}: {own} imports {other} ({target})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_internal_imports_inside_functions():
    bad = [
        f"{MODULES[m][0].relative_to(SRC)}:{line}: {target}"
        for m in MODULES
        for target, line, in_function in _imports(m)
        if in_function and target not in LAZY_WRAPPERS
    ]
    assert not bad, "internal imports inside functions (fix the layering instead):\n" + "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _, in_function in _imports(module):
            if not in_function and target in MODULES and target != module:
                graph[module].add(target)
    # a package __init__ importing its own submodules is not a cycle of substance: drop parent->child edges
    # only when the child imports the parent's *other* modules, i.e. keep the graph as is and report cycles
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for module in sorted(MODULES):
        if module not in index:
            strong(module)
    assert not cycles, f"import cycles: {cycles}"


def test_typer_only_in_cli():
    bad = []
    for module, (path, _) in MODULES.items():
        if _package(module) in ("cli", "__main__"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "typer" or n.startswith("typer.") for n in names):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not bad, "typer imported outside cli/: " + ", ".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The contract can fail: a stage module importing the pipeline is reported."""
    fake = SRC / "census" / "_fake_for_test.py"
    monkeypatch.setitem(MODULES, f"{PKG}.census._fake_for_test", (tmp_path / "fake.py", False))
    (tmp_path / "fake.py").write_text(
        "from ..pipeline.rundir import RunDir\n\ndef f():\n    from ..core import seeds\n"
    )
    imports = _imports(f"{PKG}.census._fake_for_test")
    assert (f"{PKG}.pipeline.rundir", 1, False) in imports and (f"{PKG}.core.seeds", 4, True) in imports
    assert RANK[_package(f"{PKG}.pipeline.rundir")] < RANK["census"]
    assert not fake.exists()
