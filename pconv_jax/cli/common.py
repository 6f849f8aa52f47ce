"""Arguments and loading shared by several `pconv` subcommands."""

from __future__ import annotations

import argparse

from pconv_jax import config, trained
from pconv_jax.inpaint import Inpainter


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


def add_checkpoint_args(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--checkpoint", required=True, help=what)
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")


def load_inpainter(args) -> Inpainter:
    """--checkpoint (run directory or export) and --step, --strategy, --batch-size."""
    options = dict(strategy=args.strategy, batch_size=args.batch_size)
    return Inpainter.from_trained(trained.load(args.checkpoint, args.step), **options)
