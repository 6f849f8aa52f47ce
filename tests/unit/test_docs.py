"""The README and the docs pages stay true: their examples run and every name they give exists.

Checked in README.md and docs/*.md (docs/api/ pages hold only mkdocstrings directives, which
`mkdocs build --strict` checks):
- every ```python block runs in a fresh namespace with a temporary working directory, unless the
  line before it is `<!-- docs-test: skip-run -->` (it needs real data or a trained run): then
  only its import statements run;
- every dotted `pconv_jax.a.b` name and every `from pconv_jax... import name` anywhere on the
  page resolves (the module imports, the attribute exists);
- every file (a name with an extension) or folder (a name ending in "/") under `pconv_jax/`,
  `experiments/` or `tests/` that a page mentions exists in the repo;
- every `pconv SUBCOMMAND` in a ```bash/```sh block or an inline code span is a subcommand of
  `pconv_jax.cli.build_parser()`, each `--flag` after it is an option of that subcommand, and
  each `--set section.field=value` names a field of `pconv_jax.config.Config`; an option in
  an inline code span of its own (`--masks-per-image K`) is an option of some subcommand;
- every `section.field` in an inline code span of its own is a field of `pconv_jax.config.Config`.
The expected names come from the package itself (its modules, its parser, its dataclasses).
"""

import argparse
import ast
import dataclasses
import importlib
import pathlib
import re

import pytest

from pconv_jax import config
from pconv_jax.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_RUN = "<!-- docs-test: skip-run -->"

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
DOTTED = re.compile(r"(?<![\w/.])pconv_jax(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(pconv_jax[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M
)
# A file (with an extension) or a folder (ending in "/") under one of the repo's top folders.
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:pconv_jax|experiments|tests)/(?:[\w.-]+/)*(?:[\w-]+\.\w+)?)"
)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PCONV_COMMAND = re.compile(r"(?<![\w/.-])pconv\s+([a-z][\w-]*)(.*)")
SET_ASSIGNMENT = re.compile(r"--set[ =]+([\w.]+)=")
CONFIG_SPAN = re.compile(r"^((?:model|loss|data|train)\.[a-z_]+)(?:=\S*)?$")


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    skip_run: bool

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(path: pathlib.Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(path.name, line, match.group(1), match.group(2), before == SKIP_RUN))
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in _blocks(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]
SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("bash", "sh", "shell")]


def _prose(path: pathlib.Path) -> str:
    """The page without its fenced blocks (inline code spans stay)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def resolve(dotted: str):
    """The object a dotted `pconv_jax...` name denotes: the longest importable module prefix,
    then attributes; raises (ImportError or AttributeError) when the name does not exist."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and not module_name.startswith(e.name):
                raise  # the module exists but one of its own imports is missing
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)  # AttributeError names the missing attribute
        return obj
    raise ImportError(f"no module in {dotted!r}")


def _imported_names(text: str) -> list[str]:
    """`pconv_jax.mod.name` for every `from pconv_jax.mod import name` in the text."""
    names = []
    for module, imported in FROM_IMPORT.findall(text):
        for name in imported.strip("()").replace("\n", " ").split(","):
            name = name.strip().split(" as ")[0].strip()
            if name:
                names.append(f"{module}.{name}")
    return names


def _mentioned_names(path: pathlib.Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return sorted(set(DOTTED.findall(text)) | set(_imported_names(text)))


NAMES = [(page.name, name) for page in PAGES for name in _mentioned_names(page)]


def test_the_pages_are_found_and_hold_examples():
    assert {p.name for p in PAGES} >= {"README.md", "index.md", "training.md", "inference.md"}
    assert len(PYTHON_BLOCKS) >= 10 and sum(not b.skip_run for b in PYTHON_BLOCKS) >= 5
    assert len(SHELL_BLOCKS) >= 10 and len(NAMES) >= 30


@pytest.mark.parametrize("page, name", NAMES, ids=[f"{p}:{n}" for p, n in NAMES])
def test_every_pconv_jax_name_resolves(page, name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{page} names {name}, which does not exist: {e}")


def _import_statements(code: str) -> str:
    tree = ast.parse(code)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return "\n".join(ast.unparse(n) for n in imports)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_examples_run(block, tmp_path, monkeypatch):
    """Short examples run as written; a skip-run block's imports run (its names are checked by
    test_every_pconv_jax_name_resolves)."""
    monkeypatch.chdir(tmp_path)
    code = _import_statements(block.code) if block.skip_run else block.code
    if block.skip_run and "pconv_jax" not in code:
        pytest.importorskip(code.split()[1].split(".")[0])  # e.g. onnxruntime, gradio_client
    # __name__ is "__main__" as in a user's script (a grain pipeline with workers needs it).
    exec(compile(code, f"{block.page}:{block.line}", "exec"), {"__name__": "__main__"})


def test_every_repo_path_exists():
    missing = []
    for page in PAGES:
        for path in REPO_PATH.findall(page.read_text(encoding="utf-8")):
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("build_parser() has no subcommands")


def _command_lines() -> list[tuple[str, str]]:
    """(where, logical line) of every shell line and inline code span that may hold `pconv`."""
    lines = []
    for block in SHELL_BLOCKS:
        for line in block.code.replace("\\\n", " ").splitlines():
            lines.append((str(block), line.split("#", 1)[0]))
    for page in PAGES:
        lines += [(page.name, span) for span in INLINE_CODE.findall(_prose(page))]
    return lines


def _config_keys() -> set[str]:
    cfg = config.Config()
    return {
        f"{section.name}.{field.name}"
        for section in dataclasses.fields(cfg)
        if dataclasses.is_dataclass(getattr(cfg, section.name))
        for field in dataclasses.fields(getattr(cfg, section.name))
    }


def test_every_pconv_command_flag_and_config_key_exists():
    subcommands, keys = _subcommands(), _config_keys()
    problems, seen = [], 0
    for where, line in _command_lines():
        for command in re.split(r"&&|\|\||;|\|", line):
            match = PCONV_COMMAND.search(command)
            if not match:
                continue
            seen += 1
            name, rest = match.groups()
            if name not in subcommands:
                problems.append(f"{where}: `pconv {name}` is not a command")
                continue
            options = subcommands[name]._option_string_actions
            rest = rest.split('"', 1)[0]  # a quoted command ends at its closing quote
            for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", rest):
                if flag not in options:
                    problems.append(f"{where}: `pconv {name}` has no option {flag}")
            for key in SET_ASSIGNMENT.findall(rest):
                if key not in keys:
                    problems.append(f"{where}: --set {key}: no such config field")
    # An option named on its own (`--masks-per-image K` in a table) belongs to some command.
    every_option = {o for parser in subcommands.values() for o in parser._option_string_actions}
    for page in PAGES:
        for span in INLINE_CODE.findall(_prose(page)):
            flag = re.match(r"--[a-z][\w-]*", span)
            if flag and flag.group() not in every_option:
                problems.append(f"{page.name}: `{span}`: no pconv command has {flag.group()}")
    assert seen >= 20, f"only {seen} pconv commands found: is the parsing broken?"
    assert not problems, "\n".join(problems)


def test_every_config_key_in_inline_code_exists():
    """`train.eval_every` or `data.masks=folder` in the prose names a Config field."""
    keys = _config_keys()
    spans = [
        (p.name, m)
        for p in PAGES
        for s in INLINE_CODE.findall(_prose(p))
        if (m := CONFIG_SPAN.match(s.strip()))
    ]
    assert len(spans) >= 30, f"only {len(spans)} config keys found: is the parsing broken?"
    unknown = [f"{page}: {m.group(1)}" for page, m in spans if m.group(1) not in keys]
    assert not unknown, "no such config field:\n" + "\n".join(unknown)


def test_the_home_page_lists_every_subcommand():
    """docs/index.md's command table is where a newcomer learns what `pconv` can do: every
    subcommand has a row (`pconv convert`, the way to a working model, was missing once)."""
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `pconv ([a-z0-9-]+)` \|", home, flags=re.MULTILINE))
    assert set(_subcommands()) - rows == set()
