"""`pconv evaluate` and `pconv make-test-masks`: the paper's Table 1 protocol."""

from __future__ import annotations

from pconv_jax.cli.common import add_launch_args, start_processes
from pconv_jax.eval import evaluate as evaluate_lib
from pconv_jax.eval import report
from pconv_jax.eval import tables as eval_table
from pconv_jax.masks import protocol as masks
from pconv_jax.masks import test_sets as mask_set


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


def cmd_evaluate(args) -> int:
    """Table 1 of the paper for a checkpoint or a classical baseline (resumable)."""
    start_processes(args)
    table = evaluate_lib.evaluate(
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
