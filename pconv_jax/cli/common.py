"""Arguments and loading shared by several `pconv` subcommands.

The `add_*_args` helpers only build parsers; the loaders import the library (JAX) when a
command runs, so that `pconv --help` stays fast (see pconv_jax/cli/__init__.py).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from pconv_jax import config
from pconv_jax.errors import UserError
from pconv_jax.inference.edit import MAX_SIDE_PX

if TYPE_CHECKING:
    from pconv_jax.inference.inpainter import Inpainter


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiments/configs/NAME.py (default: embedded demo)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.learning_rate=5e-5 (repeatable)",
    )


def load_config(args) -> config.Config:
    """--config and --set, every choice checked (UserError naming the key otherwise)."""
    return config.override(config.load(args.config), args.overrides)


def add_overwrite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow the output to be one of the inputs (replacing it); refused otherwise",
    )


def refuse_overwrite(args, output, *inputs) -> None:
    """UserError when `output` is the same file or folder as one of `inputs` (None skipped),
    unless --overwrite was given: nothing the user gave is replaced by accident."""
    if output is None or getattr(args, "overwrite", False):
        return
    for given in inputs:
        if given is not None and _same_path(output, given):
            raise UserError(
                f"the output {output} is the input {given}: writing would replace it; "
                "give another output path, or --overwrite"
            )


def _same_path(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (yet), or is not a path (e.g. "skimage")
        return False


def add_checkpoint_args(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--checkpoint", required=True, help=what)
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")


def add_max_side_arg(parser: argparse.ArgumentParser) -> None:
    """--max-side: the one size limit of `pconv inpaint` and `pconv serve` (`edit.check_side`)."""
    parser.add_argument(
        "--max-side",
        type=int,
        default=MAX_SIDE_PX,
        metavar="PX",
        help=f"largest accepted long side in px ({MAX_SIDE_PX}); larger photos are refused "
        "with a message (memory grows with the pixel count)",
    )


def load_inpainter(args) -> Inpainter:
    """--checkpoint (run directory or export) and --step, --strategy, --batch-size."""
    from pconv_jax.inference.inpainter import Inpainter

    options = dict(strategy=args.strategy, batch_size=args.batch_size)
    return Inpainter.load(args.checkpoint, args.step, **options)


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """--coordinator/--num-processes/--process-id (or PCONV_* variables), or --distributed."""
    group = parser.add_argument_group(
        "several processes (README: Training on several hosts)",
        "all three, or the same from PCONV_COORDINATOR, PCONV_NUM_PROCESSES, PCONV_PROCESS_ID",
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    group.add_argument("--num-processes", type=int, metavar="N", help="processes in the run")
    group.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    group.add_argument(
        "--distributed",
        action="store_true",
        help="without the three: auto-detect the cluster (SLURM, Open MPI, Cloud TPU, GKE)",
    )


def start_processes(args) -> None:
    """Joins the multi-process run the launch arguments describe (nothing for one process)."""
    from pconv_jax.parallel import distributed

    launch = distributed.resolve_launch(args.coordinator, args.num_processes, args.process_id)
    distributed.initialize(launch, auto=args.distributed)
