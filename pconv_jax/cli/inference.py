"""`pconv inpaint` and `pconv upscale`: a trained model applied to image files."""

from __future__ import annotations

import pathlib
import sys
import warnings

from pconv_jax.cli.common import (
    add_checkpoint_args,
    add_max_side_arg,
    add_overwrite_arg,
    load_inpainter,
    refuse_overwrite,
)
from pconv_jax.errors import UserError
from pconv_jax.images import read_image, save_png
from pconv_jax.inference.crop_strategy import STRATEGIES
from pconv_jax.inference.mask_ops import MaskOps, parse_color
from pconv_jax.inference.output import check_suffix

CHECKPOINT_HELP = "training run directory, or a `pconv export` .npz or .onnx"


def _mask_source(args, single_mask):
    """The hole sources of the flags, as `inference.fill.MaskSource`."""
    from pconv_jax.inference.fill import MaskSource

    return MaskSource(
        file=single_mask,
        from_alpha=args.mask_from_alpha,
        color=parse_color(args.mask_color) if args.mask_color else None,
        tolerance=args.tolerance,
        hole_is_white=args.hole_color == "white",
        threshold=args.threshold,
    )


def cmd_inpaint(args) -> int:
    """Inpaints IMAGE (holes from MASK, --mask, the alpha or a colour, plus --extend), or every
    image of --images (masks paired by stem from --masks, or one --mask for all).

    Exit status: 0 done, 1 folder mode skipped some files (listed on stderr), 2 bad input.
    """
    from pconv_jax.cli import compile_cache
    from pconv_jax.inference import files

    if args.mask and args.mask_file:
        raise UserError("give the mask once: as MASK or as --mask FILE")
    mask = args.mask or args.mask_file
    if bool(args.image) == bool(args.images):
        raise UserError("give either IMAGE (one file) or --images DIR (a folder)")
    if args.masks and (mask or args.image):
        raise UserError("--masks DIR pairs masks by name in folder mode; it excludes MASK/--mask")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality must lie in 1..100, got {args.quality}")
    compile_cache.enable(None if args.no_compile_cache else compile_cache.default_dir())
    source = _mask_source(args, mask)
    ops = MaskOps(args.invert, args.dilate, args.erode, args.feather)
    options = dict(
        ops=ops,
        extend=args.extend,
        max_side=args.max_side,
        outputs=files.Outputs(args.quality, args.concat),
    )
    if args.image:
        check_suffix(args.output)
        refuse_overwrite(args, args.output, args.image, mask)
        inpainter = load_inpainter(args)
        report = files.inpaint_file(inpainter, args.image, args.output, source, **options)
        print(f"wrote {args.output}" + (" (no hole: unchanged)" if report.unchanged else ""))
        return 0
    if not (args.masks or mask or args.mask_from_alpha or args.mask_color or args.extend):
        raise UserError(
            "folder mode needs --masks DIR, --mask FILE, --mask-from-alpha, "
            "--mask-color or --extend"
        )
    refuse_overwrite(args, args.output, args.images, args.masks)
    inpainter = load_inpainter(args)
    report = files.inpaint_folder(
        inpainter,
        args.images,
        args.output,
        source,
        args.masks,
        fmt=args.format,
        progress=not args.no_progress,
        **options,
    )
    print(report.summary(args.output))
    for path, message in report.notes:
        print(f"  note {path}: {message}", file=sys.stderr)
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 1 if report.skipped else 0


def cmd_upscale(args) -> int:
    """Super-resolves IMAGE by --factor with a model trained on SR canvases (paper Sec. 5.2)."""
    from pconv_jax.inference import superres

    output = pathlib.Path(args.output)
    if output.suffix.lower() != ".png":
        raise UserError(
            f"output must be a .png file (lossless, keeps the low-res pixels): {output}"
        )
    refuse_overwrite(args, output, args.image)
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


def add_mask_args(parser) -> None:
    """Hole sources besides mask files, and the mask operations (in their order)."""
    group = parser.add_argument_group(
        "holes and mask operations",
        "applied in this order: sources joined, invert, dilate, erode, extend, feather",
    )
    group.add_argument(
        "--hole-color",
        choices=("white", "black"),
        default="white",
        help="mask colour that marks holes (default white, as in the NVIDIA masks)",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="mask (and alpha) pixels above this fraction of full scale are white/opaque (0.5)",
    )
    group.add_argument(
        "--mask-from-alpha", action="store_true", help="the image's transparent pixels are hole"
    )
    group.add_argument(
        "--mask-color", metavar="R,G,B", help="pixels of this colour are hole (e.g. 255,0,0)"
    )
    group.add_argument(
        "--tolerance", type=int, default=0, help="--mask-color: max difference per channel (0)"
    )
    group.add_argument("--invert", action="store_true", help="swap hole and known")
    group.add_argument("--dilate", type=int, default=0, metavar="N", help="grow the hole N px")
    group.add_argument("--erode", type=int, default=0, metavar="N", help="shrink the hole N px")
    group.add_argument(
        "--extend",
        metavar="L,T,R,B",
        help="outpaint: add these pixels (or %%, e.g. 0,0,25%%,0) on each side; new border = hole",
    )
    group.add_argument(
        "--feather",
        type=int,
        default=0,
        metavar="N",
        help="blend the fill into the photo over N px outside the hole (no seam)",
    )


def register(sub) -> None:
    _add_inpaint(sub)
    _add_upscale(sub)


def _add_inpaint(sub) -> None:
    inpaint = sub.add_parser(
        "inpaint",
        help="fill the holes of IMAGE, or of every image in a folder",
        description="Mask operations apply in this order: the holes (MASK/--mask/--masks, "
        "--mask-from-alpha, --mask-color, joined), --invert, --dilate, --erode, --extend, "
        "--feather. See docs/inference-tool.md.",
    )
    add_checkpoint_args(inpaint, CHECKPOINT_HELP)
    inpaint.add_argument("image", nargs="?", help="image file (single mode)")
    inpaint.add_argument("mask", nargs="?", help="its mask file, white = hole (single mode)")
    inpaint.add_argument("--images", help="folder of images (folder mode)")
    inpaint.add_argument("--masks", help="folder of masks named like the images (folder mode)")
    inpaint.add_argument(
        "--mask",
        dest="mask_file",
        metavar="FILE",
        help="one mask for IMAGE or for every image of --images (nearest-resized to each; the "
        "aspect ratio must agree within ~1 px)",
    )
    inpaint.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file (single mode; .png, .jpg or .webp picks the format) or folder",
    )
    add_overwrite_arg(inpaint)
    add_mask_args(inpaint)
    out = inpaint.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=("png", "jpg", "webp"),
        default="png",
        help="folder mode: format of the written files (default png, lossless)",
    )
    out.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1..100 (95)")
    out.add_argument(
        "--concat", action="store_true", help="write image | hole overlay | result side by side"
    )
    inpaint.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="full",
        help="large images: run at full resolution, at the training size and upsample the fill, "
        "or on a training-size crop around each group of holes (default full)",
    )
    inpaint.add_argument("--batch-size", type=int, help="images per pass (default: one/device)")
    add_max_side_arg(inpaint)
    inpaint.add_argument("--no-progress", action="store_true", help="no progress bar")
    inpaint.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use the persistent JAX compilation cache (default: on, in "
        "$XDG_CACHE_HOME/pconv_jax/jax_cache or ~/.cache/pconv_jax/jax_cache)",
    )
    inpaint.set_defaults(func=cmd_inpaint)


def _add_upscale(sub) -> None:
    upscale = sub.add_parser(
        "upscale", help="super-resolve IMAGE by --factor with a super-resolution checkpoint"
    )
    add_checkpoint_args(upscale, CHECKPOINT_HELP)
    upscale.add_argument("--factor", type=int, required=True, help="upscaling factor K (>= 2)")
    upscale.add_argument("image", help="low-resolution image file, any size")
    upscale.add_argument("-o", "--output", required=True, help="output .png, K times larger")
    add_overwrite_arg(upscale)
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
