"""The package's architecture, read from its source: packages by job, imports one way.

Every `import` in pconv_jax/ (module level and inside functions alike) is an edge of the graph
checked here; the allowed edges are the layering of STYLE.md section 4 and the README's map. A
new import that crosses a layer the wrong way, closes a circle or deepens the stack past seven
floors fails here, naming the edge. So do the names: a project module imported under another
name (`from pconv_jax.masks import protocol as masks`), another module's private name
(`plan._resolve`), and a module over 350 lines or a function over 60 lines without a
`# Long: why` comment above it.
"""

import ast
import functools
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pconv_jax"

# Which first-level parts of pconv_jax each part may import (besides itself). "root" is
# pconv_jax/__init__.py (the lazily imported public names and the version).
ALLOWED = {
    "errors": set(),
    "atomic": set(),  # whole-file writes; every part that writes a file imports it
    "config": {"errors"},
    "images": {"errors", "atomic"},
    "parallel": {"errors", "config"},
    "metrics": {"errors", "atomic", "config"},
    "nn": {"errors", "atomic", "config"},
    "masks": {"errors", "atomic", "images"},
    "data": {"errors", "atomic", "config", "images", "masks"},
    "store": {"errors", "atomic", "config", "nn"},
    "train": {"errors", "atomic", "config", "images", "parallel", "metrics", "nn", "masks"}
    | {"data", "store"},
    "inference": {"errors", "atomic", "config", "images", "parallel", "nn", "data", "store"},
    # eval scores what it is handed (fills, an upscale function): it never imports inference/,
    # so train, inference and eval share one floor.
    "eval": {"errors", "atomic", "config", "images", "parallel", "metrics", "nn", "masks"}
    | {"data", "store"},
    # The web app: its handlers fill through inference; store for the model-path rule. Not eval
    # (one floor more): cli hands it the Telea baseline.
    "serve": {"errors", "atomic", "images", "inference", "store"},
    "cli": {"errors", "atomic", "config", "images", "parallel", "metrics", "nn", "masks", "data"}
    | {"store", "train", "inference", "eval", "serve"},
    "__main__": {"cli"},
    "root": set(),  # its lazy names are strings, resolved on first use
}
MAX_DEPTH = 7  # floors (package levels) of the longest import chain, errors.py being floor 1
MAX_FUNCTION_LINES = 60  # body lines (docstring excluded) of a function without `# Long: why`


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """{module: the pconv_jax modules it imports}, from the source with `ast`."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import module` names a module; `from module import name` does not.
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def part(module: str) -> str:
    """The first-level part of pconv_jax a module belongs to ('root' for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def test_the_graph_sees_known_edges():
    """The parser is not blind: edges that exist in the source are found."""
    graph = import_graph()
    assert "pconv_jax.nn.layers" in graph["pconv_jax.nn.model"]
    assert "pconv_jax.errors" in graph["pconv_jax.config"]
    assert "pconv_jax.inference.onnx_runtime" in graph["pconv_jax.inference.load"]
    # A function-level import counts too (store.trained imports checkpoint inside load_run).
    assert "pconv_jax.store.checkpoint" in graph["pconv_jax.store.trained"]


def test_every_part_is_known():
    unknown = {part(m) for m in import_graph()} - set(ALLOWED)
    assert not unknown, f"new top-level parts need a row in ALLOWED: {sorted(unknown)}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_go_one_way(layer):
    # Anything may read pconv_jax.__version__: the package root imports nothing itself.
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if part(module) == layer
        for target in targets
        if part(target) not in (layer, "root") and part(target) not in ALLOWED[layer]
    )
    assert not wrong, f"{layer} may import only {sorted(ALLOWED[layer])}: " + "; ".join(wrong)


def test_no_import_circles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circle = path[path.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_import_depth_is_at_most_seven_floors():
    """Floors of packages, errors.py the ground: errors, atomic; config, images; parallel,
    metrics, nn, masks; data, store; train, inference, eval; serve; cli (with __main__, the
    six-line `python -m` entry that only calls cli.main)."""
    layers: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        layer = "cli" if part(module) == "__main__" else part(module)
        layers.setdefault(layer, set()).update(part(t) for t in targets if part(t) != layer)

    @functools.cache
    def chain(layer: str) -> tuple[str, ...]:
        longest = max((chain(t) for t in layers.get(layer, ())), key=len, default=())
        return (layer, *longest)

    deepest = max((chain(layer) for layer in layers), key=len)
    assert len(deepest) <= MAX_DEPTH, f"{len(deepest)} levels: " + " -> ".join(deepest)


def test_tests_never_import_experiments():
    def imports_of(folder: str) -> list[tuple[pathlib.Path, str]]:
        found = []
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and not node.level:
                    found.append((path, node.module or ""))
                elif isinstance(node, ast.Import):
                    found += [(path, a.name) for a in node.names]
        return found

    into_experiments = [f"{p.name}: {m}" for p, m in imports_of("tests") if m.startswith("experi")]
    assert not into_experiments, f"tests import experiments/: {into_experiments}"
    # The one edge kept on purpose: benchmarks time the PyTorch U-Net and loss of tests/torch_ref,
    # the very ones the tests prove equal to pconv_jax's, so a speed ratio compares one function.
    into_tests = [
        f"{p.name}: {m}"
        for p, m in imports_of("experiments")
        if m.startswith("tests") and not m.startswith("tests.torch_ref")
    ]
    assert not into_tests, f"experiments import tests/ beyond tests.torch_ref: {into_tests}"


def test_no_module_over_350_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 350
    }
    assert not long, f"split these by job: {long}"


def test_test_modules_never_import_each_other():
    """`from test_convert import ...` works only when pytest happened to put test_convert's
    folder on sys.path first: `pytest tests/unit/train` alone then fails to collect. Shared
    helpers live in tests/helpers/ (or conftest.py)."""
    test_modules = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    found = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [
                f"{path.relative_to(ROOT)} imports {n}"
                for n in names
                if n.split(".")[0] in test_modules
            ]
    assert not found, "; ".join(found)


def _trees():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_project_module_is_imported_under_another_name():
    """`from pconv_jax.masks import protocol as masks` makes every later `masks.x` lie about where
    x lives: a project module or name is imported under its own name (one name per thing)."""
    aliased = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                project = [a for a in node.names if a.name.startswith("pconv_jax")]
                aliased += [(path, a.name, a.asname) for a in project if a.asname]
            elif isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("pconv_jax")
            ):
                aliased += [
                    (path, f"{node.module}.{a.name}", a.asname)
                    for a in node.names
                    if a.asname and a.asname != a.name
                ]
    where = [f"{p.relative_to(ROOT)}: {name} as {alias}" for p, name, alias in aliased]
    assert not where, "import these under their own names: " + "; ".join(where)


def test_no_module_uses_another_modules_private_names():
    """`_name` is private to its module: `plan._resolve` or `from ..pool import _max_workers` in
    another module means the name is public and should say so (or the caller is in the wrong
    module)."""
    modules = set(import_graph())
    found = []
    for path, tree in _trees():
        bound = {}  # local name -> the pconv_jax module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in modules and a.asname:
                        bound[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "") in modules | {
                "pconv_jax"
            }:
                for a in node.names:
                    target = f"{node.module}.{a.name}"
                    if target in modules:
                        bound[a.asname or a.name] = target
                    elif a.name.startswith("_") and not a.name.startswith("__"):
                        found.append((path, f"from {node.module} import {a.name}"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append((path, f"{bound[node.value.id]}.{node.attr}"))
    where = sorted({f"{p.relative_to(ROOT)}: {use}" for p, use in found})
    assert not where, "private names used outside their module: " + "; ".join(where)


def long_functions() -> dict[str, int]:
    """{path:function: body lines} of functions over MAX_FUNCTION_LINES with no `# Long:` comment
    on the line above them (or above their first decorator)."""
    long = {}
    for path, tree in _trees():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:] or body  # the docstring does not count
            length = (node.end_lineno or node.lineno) - body[0].lineno + 1
            top = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if length > MAX_FUNCTION_LINES and not lines[top - 2].strip().startswith("# Long:"):
                long[f"{path.relative_to(ROOT)}:{node.name}"] = length
    return long


def test_no_function_over_60_lines_without_a_reason():
    long = long_functions()
    assert not long, f"split these, or say why above them (# Long: ...): {long}"


def test_the_length_rule_sees_a_long_function(tmp_path, monkeypatch):
    """The check is not blind: a 61-line body is found, and a `# Long:` line above excuses it."""
    module = tmp_path / "pconv_jax" / "fake.py"
    module.parent.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    module.write_text(f'def f():\n    """Doc."""\n{body}\n\n@staticmethod\ndef g():\n{body}')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", module.parent)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert long_functions() == {"pconv_jax/fake.py:f": 61, "pconv_jax/fake.py:g": 61}
    module.write_text(f"# Long: a table\ndef f():\n{body}")
    assert long_functions() == {}
