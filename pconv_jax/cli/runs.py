"""`pconv info`, `pconv train` and `pconv export`: configs, training runs and their exports."""

from __future__ import annotations

import pathlib
import sys
from typing import Literal

import pconv_jax
from pconv_jax.cli.common import (
    add_checkpoint_args,
    add_config_args,
    add_launch_args,
    add_overwrite_arg,
    load_config,
    refuse_overwrite,
    start_processes,
)
from pconv_jax.errors import UserError


def cmd_info(args) -> int:
    """Versions, devices and the model's size for a config."""
    import flax
    import jax

    from pconv_jax.nn.model import abstract_variables, build_model, count_kernel_weights

    cfg = load_config(args)
    print(f"pconv_jax {pconv_jax.__version__}, jax {jax.__version__}, flax {flax.__version__}")
    print(f"devices: {jax.devices()}")
    params = abstract_variables(build_model(cfg.model))["params"]
    total = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(
        f"PConvUNet(num_layers={cfg.model.num_layers}, partial={cfg.model.partial}): "
        f"{count_kernel_weights(params):,} kernel weights, {total:,} parameters"
    )
    return 0


def cmd_train(args) -> int:
    """Trains (or resumes) a run in --workdir."""
    from pconv_jax.train import loop, preemption

    start_processes(args)
    cfg = load_config(args)
    try:
        loop.train_and_evaluate(cfg, args.workdir or f"runs/{cfg.name}")
    except preemption.Preempted as e:
        print(f"pconv train: preempted: {e}", file=sys.stderr)
        return preemption.EXIT_STATUS
    return 0


# The format an output suffix picks.
EXPORT_SUFFIXES: dict[str, Literal["npz", "onnx"]] = {".npz": "npz", ".onnx": "onnx"}


def cmd_export(args) -> int:
    """Writes a run's checkpoint as a self-contained inference .npz or .onnx file."""
    from pconv_jax.store import checkpoint, onnx_export, trained

    run, step = args.checkpoint, args.step
    if args.best:  # the step validation rated best, kept in RUN/best/
        if step is not None:
            raise UserError("--best and --step exclude each other")
        run, step = checkpoint.best_checkpoint(run)
    fmt: Literal["npz", "onnx"] | None = args.format or EXPORT_SUFFIXES.get(
        pathlib.Path(args.output).suffix.lower()
    )
    if fmt is None:
        raise UserError(
            "the export is a .npz file or an .onnx file (the suffix picks the format); got "
            f"output path {args.output}"
        )
    trained.export_path(args.output, fmt)  # a suffix against --format fails before loading
    refuse_overwrite(args, args.output, run)  # an export may be re-exported (to .onnx)
    size_hw = None
    if args.grid_size is not None:
        height, _, width = args.grid_size.lower().partition("x")
        if fmt != "onnx" or not (height.isdigit() and width.isdigit()):
            raise UserError(
                f"--grid-size takes HxW (e.g. 72x144) with --format onnx; got {args.grid_size!r}"
            )
        size_hw = (int(height), int(width))
    if fmt == "onnx":
        try:  # onnx is an optional extra, imported by the exporter
            path, step = onnx_export.export_onnx(run, args.output, step=step, size_hw=size_hw)
        except ImportError as e:
            raise UserError(f"{e}; pip install 'pconv_jax[onnx]'") from e
        print(f"wrote {path} (step {step}); run it with onnxruntime or --checkpoint {path}")
        return 0
    model = trained.load_run(run, step)
    card = None
    if model.config.data.source == "grids":  # the grid it was trained on, for pconv infill
        from pconv_jax.data import grid_train  # xarray: gridded runs only

        card = {"grid": grid_train.grid_card(model.config.data)}
    path = trained.write_export(model, args.output, card)
    print(f"wrote {path} (step {model.step}); load it with Inpainter.load or --checkpoint")
    return 0


def register(sub) -> None:
    info = sub.add_parser("info", help="versions, devices and model size")
    add_config_args(info)
    info.set_defaults(func=cmd_info)

    run = sub.add_parser(
        "train", help="train or resume a model (no --config: a CPU-sized demo on shipped photos)"
    )
    add_config_args(run)
    run.add_argument("--workdir", help="run directory; re-running resumes (default runs/NAME)")
    add_launch_args(run)
    run.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="write a self-contained inference .npz or .onnx")
    add_checkpoint_args(export, "training run directory")
    export.add_argument(
        "--best", action="store_true", help="the step validation rated best (best.json)"
    )
    export.add_argument(
        "--format",
        choices=("npz", "onnx"),
        help="npz (JAX) or onnx (dynamic batch and size, for onnxruntime); default: the output's "
        "suffix",
    )
    export.add_argument(
        "--grid-size",
        metavar="HxW",
        help="onnx: a graph for this one input size (required for model.input_sizes=any)",
    )
    export.add_argument("output", help="the .npz or .onnx file to write")
    add_overwrite_arg(export)
    export.set_defaults(func=cmd_export)
