"""Super-resolution on Kodak: the PConv U-Net (paper Sec. 5.2) against bicubic, PSNR and SSIM.

    python experiments/eval_superres.py --checkpoint runs/superres_256 --factors 2 4 \
        [--images ../shared/data/kodak] [--out sr_table.md] [--crop 512]

The protocol and the rows: pconv_jax/eval/superres.py (`sr_table`). Without --checkpoint only
bicubic runs. Prints one Markdown table (with the checkpoint's step and training budget above
it) and writes it to --out.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

from pconv_jax import atomic
from pconv_jax.eval.superres import sr_table
from pconv_jax.inference import superres

ROOT = pathlib.Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def load_model(checkpoint, step, batch_size, factors, force) -> dict:
    """sr_table's model arguments for an SR run directory or export (ValueError: a checkpoint
    not trained for super-resolution, unless `force`)."""
    upscaler, cfg, step = superres.load_upscaler(checkpoint, step=step, batch_size=batch_size)
    for factor in factors:
        superres.check_trained_for(cfg, factor, force=force)
    note = (
        f"PConv: {checkpoint} at step {step} (config {cfg.name}: task {cfg.data.task}, "
        f"factors {tuple(cfg.data.sr_factors)}, {cfg.data.image_size} px crops, batch "
        f"{cfg.train.batch_size_per_device} per device, planned {cfg.train.num_steps} steps, "
        f"data {cfg.data.dir or cfg.data.tfds_name or cfg.data.source})"
    )
    return dict(
        upscale=functools.partial(superres.upscale, upscaler, keep_low_res=False),
        model_note=note,
        trained_factors=tuple(cfg.data.sr_factors) if cfg.data.task == "superres" else (),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="SR run directory or export .npz (omit: bicubic only)")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--images", default=str(KODAK), help="image folder (default: Kodak)")
    parser.add_argument("--crop", type=int, default=512, help="centre-crop side in px")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--batch-size", type=int, help="images per forward pass")
    parser.add_argument("--force", action="store_true", help="accept a non-SR checkpoint")
    parser.add_argument("--out", default="sr_table.md", help="Markdown file to write")
    args = parser.parse_args(argv)
    try:
        model = {}
        if args.checkpoint:
            model = load_model(
                args.checkpoint, args.step, args.batch_size, args.factors, args.force
            )
        text = sr_table(args.images, args.factors, args.crop, limit=args.limit, **model)
    except (ValueError, FileNotFoundError) as e:
        print(f"eval_superres: error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    out = atomic.write_text(args.out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
