"""The `pconv` command: one subcommand per function, grouped by the library code they call.

Each module below has `register(subparsers)`, which adds its subcommands with
`set_defaults(func=...)`; a command function takes the parsed args and returns the exit status.
Exit status: 0 done; 2 a user error (bad file, flag or config: one line on stderr, see
`pconv_jax.errors.UserError`; also a missing file); 3 training stopped on a non-finite loss;
anything else raises and keeps its traceback (a bug).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pconv_jax.cli import evaluation, grids, inference, runs, weights
from pconv_jax.errors import UserError

COMMAND_GROUPS = (runs, inference, evaluation, weights, grids)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="Partial-convolution image inpainting (Liu et al., 2018)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for noisy in ("absl", "orbax", "jax._src"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except FloatingPointError as e:
        print(f"pconv {args.command}: stopped: {e}", file=sys.stderr)
        return 3
    except (UserError, FileNotFoundError) as e:
        print(f"pconv {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
