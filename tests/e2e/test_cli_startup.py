"""`pconv --help` and `pconv <command> --help` start fast: a command imports what it runs, so
building the parser imports no JAX, matplotlib, torch or Gradio (seconds of start-up each).

A fresh process is needed: the test process itself has imported JAX long before.
"""

import json
import subprocess
import sys

from pconv_jax import cli

HEAVY = ("jax", "matplotlib", "torch", "gradio")

# Runs in a fresh interpreter: `pconv --help`, then each `pconv <command> --help`, and after each
# records which heavy packages have been imported so far.
PROBE = """
import json, sys
from pconv_jax import cli
heavy = {heavy!r}
seen = {{}}
for argv in {argvs!r}:
    try:
        cli.main(argv)
    except SystemExit:
        pass
    seen[" ".join(argv)] = sorted(name for name in heavy if name in sys.modules)
print(json.dumps(seen))
"""


def commands() -> list[str]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(sub.choices)


def test_help_of_every_command_imports_no_heavy_package():
    argvs = [["--help"]] + [[command, "--help"] for command in commands()]
    probe = PROBE.format(heavy=HEAVY, argvs=argvs)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout.splitlines()[-1])
    assert list(seen) == [" ".join(argv) for argv in argvs]  # every help was built
    # The first entry that lists a package is the command whose parser imported it.
    heavy = {argv: names for argv, names in seen.items() if names}
    assert not heavy, f"--help imported {heavy} (import them inside the command's function)"
