"""`pconv evaluate`, `pconv report` and `pconv make-test-masks`: the paper's Table 1 protocol,
LaMa's, and the scoring of any tool's fills."""

from __future__ import annotations

from pconv_jax.cli import grid_evaluation
from pconv_jax.cli.common import add_launch_args, start_processes
from pconv_jax.errors import UserError
from pconv_jax.eval import evaluate as evaluate_lib
from pconv_jax.eval import plan as eval_plan
from pconv_jax.eval import report
from pconv_jax.eval import tables as eval_table
from pconv_jax.eval.grouping import GROUPINGS
from pconv_jax.masks import protocol as masks
from pconv_jax.masks import test_sets as mask_set
from pconv_jax.metrics import lpips


def cmd_make_test_masks(args) -> int:
    """A fixed test-mask set in the paper's layout: 6 hole-ratio buckets x N/B, with a manifest."""
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


def _check_mode(args) -> str:
    """ "export", "predictions" or "method", with the flags each mode needs (UserError)."""
    needs: tuple[str, ...]
    refuses: tuple[str, ...]
    given = lambda *names: [f"--{n.replace('_', '-')}" for n in names if getattr(args, n)]
    if args.export_pairs:
        mode, needs, refuses = "export", ("images",), ("method", "pairs", "predictions", "out")
    elif args.pairs or args.predictions:
        mode, needs, refuses = "predictions", ("pairs", "predictions", "out"), ("method", "images")
        refuses += ("masks", "checkpoint", "protocol_given")
    else:
        mode, needs, refuses = "method", ("method", "images", "out"), ("name",)
    missing = [f"--{n}" for n in needs if not getattr(args, n)]
    if missing:
        raise UserError(f"pconv evaluate ({mode}) needs {' and '.join(missing)}")
    if given(*refuses):
        flags = ", ".join(given(*refuses)).replace("--protocol-given", "--protocol")
        raise UserError(f"pconv evaluate ({mode}) does not take {flags}")
    return mode


def cmd_evaluate(args) -> int:
    """Table 1 of the paper (or LaMa's protocol) for a checkpoint, a classical baseline or a
    folder of fills (resumable); or the protocol's pairs as files."""
    args.protocol_given = args.protocol is not None
    # Gridded fields (--grid) have their own module; --method is repeatable only there.
    if grid_evaluation.wants_grid(args):
        return grid_evaluation.cmd_evaluate_grid(args)
    if args.method and (len(args.method) > 1 or args.method[0] not in evaluate_lib.METHODS):
        raise UserError(f"pconv evaluate (images) takes one --method of {evaluate_lib.METHODS}")
    args.method = args.method[0] if args.method else None
    args.protocol = args.protocol or "paper"
    mode = _check_mode(args)
    common = dict(
        batch_size=args.batch_size,
        fid_weights=args.fid_weights,
        num_workers=args.workers,
        grouping=args.grouping,
        lpips_net=args.lpips_net,
    )
    if mode == "export":
        plan = eval_plan.from_sources(
            args.images, args.masks, protocol=args.protocol, size=args.size, seed=args.seed,
            split=args.split, limit=args.limit, masks_per_image=args.masks_per_image,
        )  # fmt: skip
        eval_plan.export(plan, args.export_pairs, num_workers=args.workers or 4)
        print(f"wrote {len(plan.pairs)} pairs (images/, masks/ white = hole, pairs.json) to "
              f"{args.export_pairs}")  # fmt: skip
        return 0
    start_processes(args)
    if mode == "predictions":
        table = evaluate_lib.score_predictions(
            args.pairs, args.predictions, args.out, name=args.name, known=args.known, **common
        )
    else:
        table = evaluate_lib.evaluate(
            args.method, args.images, args.masks, args.out, protocol=args.protocol,
            size=args.size, seed=args.seed, checkpoint=args.checkpoint, step=args.step,
            split=args.split, limit=args.limit, masks_per_image=args.masks_per_image, **common,
        )  # fmt: skip
    print(eval_table.to_markdown(table), end="")
    print(f"wrote table.md, table.csv, table.json, results.jsonl and example grids to {args.out}")
    return 0


def cmd_report(args) -> int:
    """One Markdown page with tables, plots and figure grids of evaluations and runs."""
    path = report.write_report(args.folders, args.out)
    print(f"wrote {path} and its figures")
    return 0


def register(sub) -> None:
    make = sub.add_parser(
        "make-test-masks", help="build a fixed test-mask set (6 buckets x N/B) with a manifest"
    )
    make.add_argument("out", help="new folder for the PNG masks and manifest.csv")
    make.add_argument("--size", type=int, default=512, help="mask side in px")
    make.add_argument(
        "--per-bucket", type=int, default=1000, help="masks per bucket and per N/B half"
    )
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--from", dest="from_dir", help="augment raw masks from this folder instead of generating"
    )
    make.add_argument(
        "--threshold", type=float, default=0.6, help="--from: fraction of white that is white"
    )
    make.add_argument(
        "--black-holes", action="store_true", help="--from: raw masks are black = hole"
    )
    make.add_argument("--workers", type=int, default=2, help="threads drawing masks")
    make.set_defaults(func=cmd_make_test_masks)

    evaluate = sub.add_parser(
        "evaluate",
        help="Table 1 (6 buckets x N/B) or LaMa's protocol for a checkpoint, a classical "
        "baseline or any tool's fills; or the protocol's pairs as files",
    )
    evaluate.add_argument(
        "--method",
        action="append",
        choices=evaluate_lib.METHODS + grid_evaluation.METHODS,
        help="images: one of " + ", ".join(evaluate_lib.METHODS) + "; --grid: see below",
    )
    evaluate.add_argument("--checkpoint", help="pconv/conv: a `pconv train` run directory")
    evaluate.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    evaluate.add_argument("--images", help='image folder, "skimage", or "tfds:NAME" (with --split)')
    evaluate.add_argument("--split", help="tfds split (default: validation)")
    evaluate.add_argument(
        "--protocol",
        choices=eval_plan.PROTOCOLS,
        help="paper (default): the test masks of --masks; lama-thin/-medium/-thick: LaMa's "
        "generated masks at --size 256 or 512",
    )
    evaluate.add_argument(
        "--masks", help="--protocol paper: test-mask folder (NVIDIA test masks or make-test-masks)"
    )
    evaluate.add_argument("--size", type=int, default=256, help="evaluation side in px")
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the image-mask pairing / LaMa masks / --grid generated coverage",
    )
    evaluate.add_argument("--out", help="results folder (rerun = resume)")
    evaluate.add_argument(
        "--limit", type=int, help="use only the first N images (--grid: time steps)"
    )
    evaluate.add_argument(
        "--masks-per-image", type=int, default=1, help="distinct masks paired with each image"
    )
    evaluate.add_argument(
        "--export-pairs",
        metavar="DIR",
        help="write the protocol's pairs as DIR/images/NAME.png, DIR/masks/NAME.png (white = "
        "hole) and DIR/pairs.json for another tool to fill; nothing is evaluated",
    )
    evaluate.add_argument("--pairs", metavar="DIR", help="a folder written by --export-pairs")
    evaluate.add_argument(
        "--predictions", metavar="PRED", help="with --pairs: score the fills PRED/NAME.png"
    )
    evaluate.add_argument("--name", help="--predictions: the method's name in tables")
    evaluate.add_argument(
        "--known",
        choices=evaluate_lib.KNOWN,
        default="composited",
        help="--predictions: score truth*mask + fill*(1-mask) (default) or the fill as written",
    )
    evaluate.add_argument(
        "--grouping",
        choices=GROUPINGS,
        help="table columns: paper (6 buckets x N/B) or lama (10 area bins); default: the "
        "protocol's",
    )
    evaluate.add_argument(
        "--lpips-net", choices=tuple(lpips.NETS), default="alex", help="LPIPS network (LaMa: vgg)"
    )
    evaluate.add_argument(
        "--batch-size", type=int, help="pairs per step (default 4 per device; divisible by them)"
    )
    evaluate.add_argument(
        "--fid-weights",
        help="FID Inception weights (.npz or .pt): adds FID, U-IDS/P-IDS and IS with a head",
    )
    evaluate.add_argument("--workers", type=int, help="loading/baseline threads (default: CPUs)")
    grid_evaluation.add_grid_args(evaluate)
    add_launch_args(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    report_cmd = sub.add_parser(
        "report", help="a Markdown page with tables, plots and figure grids of results"
    )
    report_cmd.add_argument(
        "folders", nargs="+", help="`pconv evaluate` output folders and `pconv train` runs"
    )
    report_cmd.add_argument("-o", "--out", required=True, help="folder for report.md and PNGs")
    report_cmd.set_defaults(func=cmd_report)
