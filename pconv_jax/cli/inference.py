"""`pconv inpaint` and `pconv upscale`: a trained model applied to image files."""

from __future__ import annotations

import pathlib
import sys
import warnings

from pconv_jax.cli.common import add_checkpoint_args, load_inpainter
from pconv_jax.errors import UserError
from pconv_jax.images import read_image, save_png
from pconv_jax.inference import files as inpaint_files
from pconv_jax.inference import superres
from pconv_jax.inference.inpainter import STRATEGIES

CHECKPOINT_HELP = "training run directory, or a `pconv export` .npz or .onnx"


def cmd_inpaint(args) -> int:
    """Inpaints IMAGE with MASK, or every image of --images with its mask from --masks.

    Exit status: 0 done, 1 folder mode skipped some files (listed on stderr), 2 bad input.
    """
    single, folder = (args.image, args.mask), (args.images, args.masks)
    if all(single) == all(folder) or any(single) != all(single) or any(folder) != all(folder):
        raise UserError("give either IMAGE MASK, or both --images DIR and --masks DIR")
    inpainter = load_inpainter(args)
    options = dict(hole_is_white=args.hole_color == "white", threshold=args.threshold)
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


def cmd_upscale(args) -> int:
    """Super-resolves IMAGE by --factor with a model trained on SR canvases (paper Sec. 5.2)."""
    output = pathlib.Path(args.output)
    if output.suffix.lower() != ".png":
        raise UserError(
            f"output must be a .png file (lossless, keeps the low-res pixels): {output}"
        )
    if args.factor < 2:
        raise UserError(f"--factor must be an integer >= 2, got {args.factor}")
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


def cmd_serve(args) -> int:
    """Starts the inpainting web page and its `inpaint` API (Gradio) for one model."""
    from pconv_jax.cli import serve

    try:
        serve.import_gradio()
    except ImportError as e:
        raise UserError(str(e)) from e
    serve.serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        max_side=args.max_side,
        strategy=args.strategy,
    )
    return 0


def register(sub) -> None:
    inpaint = sub.add_parser(
        "inpaint", help="fill the holes of IMAGE given MASK, or of every image in a folder"
    )
    add_checkpoint_args(inpaint, CHECKPOINT_HELP)
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
        choices=STRATEGIES,
        default="full",
        help="large images: run at full resolution, at the training size and upsample the fill, "
        "or on a training-size crop around each group of holes (default full)",
    )
    inpaint.add_argument("--batch-size", type=int, help="images per pass (default: one/device)")
    inpaint.add_argument("--no-progress", action="store_true", help="no progress bar")
    inpaint.set_defaults(func=cmd_inpaint)

    upscale = sub.add_parser(
        "upscale", help="super-resolve IMAGE by --factor with a super-resolution checkpoint"
    )
    add_checkpoint_args(upscale, CHECKPOINT_HELP)
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
    upscale.set_defaults(func=cmd_upscale)

    serve = sub.add_parser("serve", help="web page to paint holes and fill them (Gradio)")
    serve.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument(
        "--max-side", type=int, default=4096, help="largest accepted long side in px (4096)"
    )
    serve.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="full",
        help="default strategy of the page and of the `inpaint` API (default full)",
    )
    serve.set_defaults(func=cmd_serve)
