"""The package's import structure: no import cycles inside `tritonnx`, and the runtime
imports nothing from the compiler. The graph is read from the source with `ast`: every
`import` and `from ... import` of a tritonnx module anywhere in a module (function bodies
included, relative imports resolved); only `if TYPE_CHECKING:` blocks are left out, since
they never run. A function-level import that hides a cycle from Python is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "tritonnx"


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the package (a package is its __init__)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The tritonnx modules that module `name` imports (see the module docstring)."""
    found: set[str] = set()

    def resolve(target: str) -> str | None:
        # the longest prefix of `target` that is a module of the package
        parts = target.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in modules:
                return candidate
            parts.pop()
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (m := resolve(alias.name)) is not None:
                    found.add(m)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source == PACKAGE or source.startswith(PACKAGE + "."):
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{source}.{alias.name}"
                    m = sub if sub in modules else resolve(source)
                    if m is not None:
                        found.add(m)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """{module: the tritonnx modules it imports} for every module of the package."""
    files = module_files()
    names = set(files)
    return {
        name: _imports(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", names)
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    src = "from . import b\ndef f():\n    from tritonnx.c import x\nif TYPE_CHECKING:\n    import tritonnx.d\n"
    tree = ast.parse(src)
    mods = {"tritonnx.pkg", "tritonnx.pkg.a", "tritonnx.pkg.b", "tritonnx.c", "tritonnx.d"}
    assert _imports(tree, "tritonnx.pkg.a", False, mods) == {"tritonnx.pkg.b", "tritonnx.c"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    if cycle:
        pytest.fail("import cycle inside tritonnx: " + " -> ".join(cycle))


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_runtime_imports_nothing_from_compiler():
    """Directly or through other modules (`import tritonnx` would import the compiler)."""
    graph = import_graph()
    bad = []
    for start in sorted(m for m in graph if _is_in(m, f"{PACKAGE}.runtime")):
        path = {start: [start]}
        queue = [start]
        while queue:
            m = queue.pop(0)
            if _is_in(m, f"{PACKAGE}.compiler"):
                bad.append(" -> ".join(path[m]))
                break
            for dep in sorted(graph[m]):
                if dep not in path:
                    path[dep] = path[m] + [dep]
                    queue.append(dep)
    assert not bad, "the runtime reaches into the compiler: " + "; ".join(bad)
