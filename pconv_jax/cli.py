"""The `pconv` command: argparse subcommands, each calling one library function.

Library modules are imported inside the command functions so that `pconv --help` stays fast.
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="Partial-convolution image inpainting (Liu et al., 2018)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="versions, devices and model size")
    _add_config_args(info)
    info.set_defaults(func=_cmd_info)

    port = sub.add_parser(
        "port-vgg16",
        help="torchvision vgg16 .pth -> .npz of conv1_1..conv3_3 (so training needs no torch)",
    )
    port.add_argument("src", help="torchvision vgg16 state dict (.pth), or an .npz")
    port.add_argument("dst", help="output .npz (keys conv1_1/kernel ... HWIO float32)")
    port.set_defaults(func=_cmd_port_vgg16)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"pconv {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
