"""Training and infilling speed of pconv_jax against CRAI's own PyTorch code, side by side.

    git clone https://github.com/FREVA-CLINT/climatereconstructionAI /tmp/crai   # e4454e0
    python experiments/bench_crai.py --crai-dir /tmp/crai

One run times both on the same machine, the same architecture and the same batch: CRAI's
`--n-filters N --global-padding` network (CRAINet with `init_*_conv_configs_orig`: widths N, 2N,
4N, 8N, 8N.., kernels 7, 5, 5, 3, 3.., LeakyReLU 0.01, partial convolutions divided by the mask
sum) on one-channel 64x128 fields (T42) with CRAI's valid + hole loss (criterion 0 without its
VGG terms) and Adam, against the same network built from pconv_jax's ModelConfig options and its
jitted train step. Inputs: random fields and masks with ~30 % of the cells observed (speed does
not depend on the values). Training: fields/s over `--steps` steps after `--warmup` untimed ones
(compilation for JAX); infilling: fields/s of the forward pass (eval mode, no gradients).

CRAI's package is imported from `--crai-dir` (never copied here) with three shims that exist only
in this script: the package is entered without running its `__init__` (which imports CRAI's trainer
and evaluator, and with them torchmetrics, xesmf's regridding and an older torch Sampler API, none
needed to time the network); CRAI's loss module imports torchvision for its VGG feature loss (the
pip torchvision wheel does not load beside the CPU torch used here, and the VGG terms are off), and
its global `config` module is filled in directly instead of through its argument parser (which
needs data files). CRAI's NetCDF loader, which needs `xesmf` and an older torch Sampler, is not
used.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import types

import numpy as np


def crai_modules(crai_dir: pathlib.Path):
    """CRAI's config, net and loss modules, imported from a checkout with the shims above."""
    if not (crai_dir / "climatereconstructionai" / "model" / "net.py").is_file():
        sys.exit(f"{crai_dir} is not a CRAI checkout (no climatereconstructionai/model/net.py)")
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or the pip wheel that does not load beside this torch
        shim = types.ModuleType("torchvision")
        shim.models = types.ModuleType("torchvision.models")  # type: ignore[attr-defined]
        shim.transforms = types.ModuleType("torchvision.transforms")  # type: ignore[attr-defined]
        sys.modules.update(
            {
                "torchvision": shim,
                "torchvision.models": shim.models,
                "torchvision.transforms": shim.transforms,
            }
        )
    # The package's __init__ imports CRAI's trainer and evaluator (torchmetrics, xarray, its
    # NetCDF loader): a bare package object lets the model and loss modules import alone.
    package = types.ModuleType("climatereconstructionai")
    package.__path__ = [str(crai_dir / "climatereconstructionai")]
    sys.modules["climatereconstructionai"] = package
    from climatereconstructionai import config as crai_config
    from climatereconstructionai.loss import get_loss
    from climatereconstructionai.model import net

    return crai_config, net, get_loss


def configure_crai(crai_config, n_filters: int) -> None:
    """The attributes CRAI's argument parser would set for `--n-filters N --global-padding`
    with one variable, no recurrence, no attention, loss criterion 0 without VGG terms."""
    settings = dict(
        n_filters=n_filters,
        conv_factor=None,
        global_padding=True,
        masked_bn=False,
        disable_first_bn=False,
        weights=None,
        lstm_steps=0,
        gru_steps=0,
        recurrent_steps=0,
        n_recurrent_steps=1,
        attention=False,
        skip_layers=1,
        n_channel_steps=1,
        gt_channels=[0],
        device="cpu",
        multi_gpus=False,
        n_target_data=0,
        lambda_dict={"valid": 1.0, "hole": 6.0},
    )
    for name, value in settings.items():
        setattr(crai_config, name, value)


def time_crai(args, fields, masks) -> dict:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    crai_config, net, get_loss = crai_modules(pathlib.Path(args.crai_dir))
    configure_crai(crai_config, args.n_filters)
    bounds = np.array([[-np.inf, np.inf]])
    model = net.CRAINet(
        img_size=fields.shape[1:3],
        enc_dec_layers=args.layers,
        pool_layers=0,
        in_channels=1,
        out_channels=1,
        bounds=bounds,
    )
    loss = get_loss.LossComputation(crai_config.lambda_dict)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # CRAI's layout: [B, time steps, channels, H, W].
    gt = torch.from_numpy(fields[:, None, None, :, :, 0].copy())
    mask = torch.from_numpy(masks[:, None, None, :, :, 0].copy())
    model.train()

    def step():
        output = model(gt * mask, mask)
        total = loss(mask.clone(), None, output, gt)["total"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    train = _fields_per_second(step, args, len(fields))
    model.eval()

    def infill():
        with torch.no_grad():
            model(gt * mask, mask)

    return {
        "train": train,
        "infill": _fields_per_second(infill, args, len(fields)),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def time_ours(args, fields, masks) -> dict:
    import functools

    import jax

    from pconv_jax.config import Config, LossConfig, ModelConfig
    from pconv_jax.nn.model import abstract_variables, build_model
    from pconv_jax.train import step as train_step

    n = args.n_filters
    cfg = Config(
        model=ModelConfig(
            num_layers=args.layers,
            in_channels=1,
            out_channels=1,
            width=n,
            max_width=8 * n,
            encoder_kernels=(7, 5, 5) + (3,) * (args.layers - 3),
            padding="global",
            input_sizes="any",
            ratio="mask_sum",
            conv_bias="last_only",
            leaky_slope=0.01,
        ),
        loss=LossConfig(valid=1.0, hole=6.0, perceptual=0.0, style=0.0, tv=0.0),
    )
    model = build_model(cfg.model)
    tx = train_step.make_optimizer(cfg, abstract_variables(model)["params"])
    state = train_step.create_train_state(model, tx, 64, 0)
    batch = {"image": jax.numpy.asarray(fields), "mask": jax.numpy.asarray(masks)}
    jitted = jax.jit(functools.partial(train_step.train_step, model=model, cfg=cfg))
    holder = {"state": state}

    def step():
        holder["state"], metrics = jitted(holder["state"], batch, None)
        jax.block_until_ready(metrics)

    train = _fields_per_second(step, args, len(fields))
    predict = jax.jit(functools.partial(train_step.predict, model=model))
    variables = holder["state"].model_vars()

    def infill():
        jax.block_until_ready(predict(variables, batch["image"] * batch["mask"], batch["mask"]))

    params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(state.params))
    return {
        "train": train,
        "infill": _fields_per_second(infill, args, len(fields)),
        "parameters": params,
    }


def _fields_per_second(run, args, batch: int) -> float:
    for _ in range(args.warmup):
        run()
    start = time.perf_counter()
    for _ in range(args.steps):
        run()
    return args.steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crai-dir", required=True, help="a checkout of CRAI (e4454e0)")
    parser.add_argument("--n-filters", type=int, default=16)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (cores)")
    parser.add_argument("--out", default="", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fields = rng.normal(size=(args.batch, 64, 128, 1)).astype(np.float32)
    masks = (rng.random((args.batch, 64, 128, 1)) < 0.3).astype(np.float32)
    crai = time_crai(args, fields, masks)
    ours = time_ours(args, fields, masks)
    print(
        f"batch {args.batch}, 64x128, --n-filters {args.n_filters}, {args.layers} levels, "
        f"{crai['parameters']} / {ours['parameters']} parameters (CRAI / ours)"
    )
    print("| fields/s | CRAI (PyTorch) | pconv_jax | ratio |")
    print("|---|---|---|---|")
    for key in ("train", "infill"):
        print(f"| {key} | {crai[key]:.1f} | {ours[key]:.1f} | {ours[key] / crai[key]:.2f}x |")
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"args": vars(args), "crai": crai, "ours": ours}, indent=1))
        tmp.replace(out)


if __name__ == "__main__":
    main()
