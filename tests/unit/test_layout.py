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

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pconv_jax"

# Which first-level parts of pconv_jax each part may import (besides itself). "root" is
# pconv_jax/__init__.py (the lazily imported public names and the version).
ALLOWED = {
    "errors": set(),
    "config": {"errors"},
    "images": {"errors"},
    "parallel": {"errors", "config"},
    "metrics": {"errors", "config"},
    "nn": {"errors", "config"},
    "masks": {"errors", "images"},
    "data": {"errors", "config", "images", "masks"},
    "store": {"errors", "config", "nn"},
    "train": {"errors", "config", "images", "parallel", "metrics", "nn", "masks", "data", "store"},
    "inference": {"errors", "config", "images", "parallel", "nn", "data", "store"},
    # eval scores what it is handed (fills, an upscale function): it never imports inference/,
    # so train, inference and eval share one floor.
    "eval": {"errors", "config", "images", "parallel", "metrics", "nn", "masks", "data", "store"},
    "cli": {"errors", "config", "images", "parallel", "metrics", "nn", "masks", "data"}
    | {"store", "train", "inference", "eval"},
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
    """Floors of packages, errors.py the ground: errors; config, images; parallel, metrics, nn,
    masks; data, store; train, inference, eval; cli; __main__ (the `python -m` entry)."""
    layers: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        layer = part(module)
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
