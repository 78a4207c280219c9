"""The package's imports follow the data: one direction, no cycles, no hidden imports.

Parses every module of toyfdiv (ast, nothing imported) and fails, naming the edge, on
- an import that climbs a layer (LAYERS, lowest first: a module may import only from
  layers below its own, or from its own package);
- an import cycle between modules (through any import, at the top or inside a function);
- an import inside a function outside ``__main__``, unless it is of a heavy optional
  third-party module and says so in a comment on its line (``# optional: …``);
- a private name (``_x``) imported from another module.
The layers are those of DESIGN.md §2, written once here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toyfdiv"

#: lowest first; a "unit" is a top-level module or subpackage of toyfdiv ("" = toyfdiv/__init__)
LAYERS = [
    ["space"],
    ["_util", "claims"],  # claims: sentences from numbers (imports nothing of the package)
    ["divergences", "optim", "sequences"],
    ["loop"],  # the one optimisation loop: below the policies, so that pretraining uses it too
    ["targets"],
    ["policies"],
    ["pretraining"],
    ["tasks", "rl_tasks"],
    ["exact"],
    ["estimators"],
    ["estimator_lab"],
    ["fdpg"],  # the public face of exact, estimators and estimator_lab
    ["rl"],
    ["metrics"],
    ["training"],
    ["simplex"],
    ["build"],  # building a run from settings; a finished run as a row
    ["config"],
    ["runs"],
    ["experiments", "conditional", "feedback", "distill"],
    ["diversity"],
    ["collapse"],  # RL fixed points and pass@k (uses rl, conditional and diversity)
    ["plots"],
    ["plots_po", "plots_rl"],
    ["exercises"],
    [""],
    ["__main__"],
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges():
    """(importer, imported module, names, line number, inside a function?, source line) for every toyfdiv import."""
    edges, local = [], []
    for module, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            in_function = id(node) not in top and not _guarded_top(tree, node)
            line = lines[node.lineno - 1]
            if isinstance(node, ast.Import):
                targets = [(a.name, []) for a in node.names]
            elif node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
                targets = []
                for a in node.names:  # "from . import x": x may be a submodule
                    sub = f"{base}.{a.name}"
                    targets.append((sub, []) if sub in MODULES else (base, [a.name]))
            else:
                targets = [(node.module, [a.name for a in node.names])]
            for target, names in targets:
                if target == "toyfdiv" or target.startswith("toyfdiv."):
                    edges.append((module, target, names, node.lineno, in_function, line))
                elif in_function:
                    local.append((module, target, node.lineno, line))
    return edges, local


def _guarded_top(tree, node) -> bool:
    """An import in a module-level if/try block (e.g. ``if TYPE_CHECKING:``) counts as top level."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.If, ast.Try)) and any(n is node for n in ast.walk(stmt)):
            return True
    return False


EDGES, LOCAL = _edges()


def test_every_module_has_a_layer():
    missing = sorted({_unit(m) for m in MODULES} - set(LAYER))
    assert not missing, f"modules without a layer (add them to LAYERS in DESIGN order): {missing}"


def test_imports_point_down():
    climbing = [f"{a} -> {b} (line {n}: {line.strip()}): layer {LAYER[_unit(b)]} '{_unit(b)}' is not below "
                f"layer {LAYER[_unit(a)]} '{_unit(a)}'"
                for a, b, _, n, _, line in EDGES
                if _unit(a) != _unit(b) and LAYER.get(_unit(b), -1) >= LAYER.get(_unit(a), -1)]
    assert not climbing, "imports that climb a layer:\n" + "\n".join(climbing)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for a, b, *_ in EDGES:
        if a != b:  # a package's __init__ importing its submodules is an edge like any other
            graph.setdefault(a, set()).add(b)
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_imports_inside_functions():
    hidden = [f"{a} -> {b} (line {n}: {line.strip()})" for a, b, _, n, inside, line in EDGES
              if inside and a != "toyfdiv.__main__"]
    hidden += [f"{a} -> {b} (line {n}: {line.strip()}): a function-level import needs '# optional: <why>'"
               for a, b, n, line in LOCAL if a != "toyfdiv.__main__" and "# optional:" not in line]
    assert not hidden, "imports inside functions (move them to the top of the module):\n" + "\n".join(hidden)


def test_no_private_names_cross_modules():
    private = [f"{a} imports {name} from {b} (line {n})" for a, b, names, n, _, _ in EDGES for name in names
               if name.startswith("_") and not name.startswith("__") and a != b]
    assert not private, "private names imported across modules (make them public or move them):\n" + "\n".join(private)


@pytest.mark.parametrize("source, expected", [
    ("from . import loop\n", ("toyfdiv.x", "toyfdiv.loop")),
    ("from .policies.base import Policy\n", ("toyfdiv.x", "toyfdiv.policies.base")),
])
def test_the_parser_resolves_relative_imports(source, expected, tmp_path, monkeypatch):
    """The oracle for the checks above: relative imports resolve to the module they name."""
    (tmp_path / "toyfdiv").mkdir()
    (tmp_path / "toyfdiv" / "x.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "MODULES",
                        {"toyfdiv.x": tmp_path / "toyfdiv" / "x.py", "toyfdiv.loop": PACKAGE / "loop.py"})
    edges, _ = _edges()
    assert (edges[0][0], edges[0][1]) == expected
