"""The `pconv` command: argparse subcommands, each calling one library function.

Library modules are imported inside the command functions so that `pconv --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiments/configs/NAME.py (default: embedded demo)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.learning_rate=5e-5 (repeatable)",
    )


def _load_config(args):
    from pconv_jax import config

    return config.override(config.load(args.config), args.overrides)


def _cmd_info(args) -> int:
    """Versions, devices and the model's size for a config."""
    import flax
    import jax
    import jax.numpy as jnp

    import pconv_jax
    from pconv_jax.model import PConvUNet, count_kernel_weights

    cfg = _load_config(args)
    print(f"pconv_jax {pconv_jax.__version__}, jax {jax.__version__}, flax {flax.__version__}")
    print(f"devices: {jax.devices()}")
    side = 2**cfg.model.num_layers * 2
    model = PConvUNet(num_layers=cfg.model.num_layers, partial=cfg.model.partial)
    shapes = jax.eval_shape(
        lambda: model.init(
            jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.ones((1, side, side, 1))
        )
    )
    total = sum(x.size for x in jax.tree_util.tree_leaves(shapes["params"]))
    print(
        f"PConvUNet(num_layers={cfg.model.num_layers}, partial={cfg.model.partial}): "
        f"{count_kernel_weights(shapes['params']):,} kernel weights, {total:,} parameters"
    )
    return 0


def _cmd_train(args) -> int:
    """Trains (or resumes) a run in --workdir."""
    import jax

    if args.distributed:
        jax.distributed.initialize()
    from pconv_jax import train

    cfg = _load_config(args)
    workdir = args.workdir or f"runs/{cfg.name}"
    train.train_and_evaluate(cfg, workdir)
    return 0


def _load_inpainter(args):
    import pathlib

    from pconv_jax.inpaint import Inpainter

    options = dict(strategy=args.strategy, batch_size=args.batch_size)
    if pathlib.Path(args.checkpoint).is_file():
        if args.step is not None:
            raise ValueError("--step applies to a run directory, not to an exported .npz")
        return Inpainter.from_export(args.checkpoint, **options)
    return Inpainter.from_checkpoint(args.checkpoint, step=args.step, **options)


def _cmd_inpaint(args) -> int:
    """Inpaints IMAGE with MASK, or every image of --images with its mask from --masks.

    Exit status: 0 done, 1 folder mode skipped some files (listed on stderr), 2 bad input.
    """
    from pconv_jax import inpaint_files

    single, folder = (args.image, args.mask), (args.images, args.masks)
    if all(single) == all(folder) or any(single) != all(single) or any(folder) != all(folder):
        raise ValueError("give either IMAGE MASK, or both --images DIR and --masks DIR")
    inpainter = _load_inpainter(args)
    options = dict(hole_color=args.hole_color, threshold=args.threshold)
    if all(single):
        inpaint_files.inpaint_file(inpainter, args.image, args.mask, args.output, **options)
        print(f"wrote {args.output}")
        return 0
    report = inpaint_files.inpaint_folder(
        inpainter, args.images, args.masks, args.output, progress=not args.no_progress, **options
    )
    print(
        f"wrote {len(report.written) + len(report.unchanged)} images to {args.output} "
        f"({len(report.unchanged)} unchanged: mask without hole); skipped {len(report.skipped)}"
    )
    for path, message in report.notes:
        print(f"  note {path}: {message}", file=sys.stderr)
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 1 if report.skipped else 0


def _cmd_export(args) -> int:
    """Writes a run's checkpoint as a self-contained inference .npz."""
    from pconv_jax.export import export_npz

    path, step = export_npz(args.checkpoint, args.output, step=args.step)
    print(f"wrote {path} (step {step}); load it with Inpainter.from_export or --checkpoint")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="Partial-convolution image inpainting (Liu et al., 2018)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="versions, devices and model size")
    _add_config_args(info)
    info.set_defaults(func=_cmd_info)

    train = sub.add_parser(
        "train", help="train or resume a model (no --config: a CPU-sized demo on shipped photos)"
    )
    _add_config_args(train)
    train.add_argument("--workdir", help="run directory; re-running resumes (default runs/NAME)")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: jax.distributed.initialize() with settings from the environment",
    )
    train.set_defaults(func=_cmd_train)

    inpaint = sub.add_parser(
        "inpaint", help="fill the holes of IMAGE given MASK, or of every image in a folder"
    )
    inpaint.add_argument(
        "--checkpoint", required=True, help="training run directory, or a `pconv export` .npz"
    )
    inpaint.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    inpaint.add_argument("image", nargs="?", help="image file (single mode)")
    inpaint.add_argument("mask", nargs="?", help="mask file of the same size (single mode)")
    inpaint.add_argument("--images", help="folder of images (folder mode)")
    inpaint.add_argument("--masks", help="folder of masks named like the images (folder mode)")
    inpaint.add_argument(
        "-o", "--output", required=True, help="output .png (single mode) or folder (folder mode)"
    )
    inpaint.add_argument(
        "--hole-color",
        choices=("white", "black"),
        default="white",
        help="mask colour that marks holes (default white, as in the NVIDIA masks)",
    )
    inpaint.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="mask pixels above this fraction of full scale are white (default 0.5)",
    )
    inpaint.add_argument(
        "--strategy",
        choices=("full", "downscale"),
        default="full",
        help="large images: run at full resolution, or at the training size and upsample the "
        "fill (default full)",
    )
    inpaint.add_argument("--batch-size", type=int, help="images per pass (default: one/device)")
    inpaint.add_argument("--no-progress", action="store_true", help="no progress bar")
    inpaint.set_defaults(func=_cmd_inpaint)

    export = sub.add_parser("export", help="write a self-contained inference .npz")
    export.add_argument("--checkpoint", required=True, help="training run directory")
    export.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    export.add_argument("output", help="the .npz file to write")
    export.set_defaults(func=_cmd_export)
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
    except (ValueError, FileNotFoundError) as e:
        print(f"pconv {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
