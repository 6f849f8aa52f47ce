"""Super-resolution on Kodak: the PConv U-Net (paper Sec. 5.2) against bicubic, PSNR and SSIM.

    python experiments/eval_superres.py --checkpoint runs/superres_256 --factors 2 4 \
        [--images ../shared/data/kodak] [--out sr_table.md] [--crop 512]

The protocol and the rows: pconv_jax/eval/superres.py (`sr_table`). Without --checkpoint only
bicubic runs. Prints one Markdown table (with the checkpoint's step and training budget above
it) and writes it to --out.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from pconv_jax import atomic
from pconv_jax.eval.superres import sr_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


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
        text = sr_table(
            args.images,
            args.factors,
            args.crop,
            checkpoint=args.checkpoint,
            step=args.step,
            limit=args.limit,
            batch_size=args.batch_size,
            force=args.force,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"eval_superres: error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    out = atomic.write_text(args.out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
