"""Tiny in-process training pieces shared by the train-step tests: a 4-level U-Net on 32x32."""

import dataclasses
import functools

import jax
import numpy as np

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.parallel import sharding
from pconv_jax.train import step as train_step

import tolerances

SIDE = 32


def bn_counts(n: int, side: int = SIDE) -> list[int]:
    """N*H*W values each BN layer of the 4-level U-Net sees on `n` images of side x side:
    enc2..enc4 at side/4, /8, /16 a side, dec2..dec4 at side/2, /4, /8 (enc1, dec1: no BN)."""
    return [n * (side // 2**i) ** 2 for i in (2, 3, 4, 1, 2, 3)]


def unet_rtol(n: int) -> float:
    """|a - b| allowed, relative to the output's scale, between two float32 programs (another
    device count, another BN path) computing the tiny U-Net's training-mode output: every
    convolution's reduction and each BN layer's mean and variance as one sum
    (tests/tolerances.py)."""
    return tolerances.network_atol(tolerances.unet_reductions(4) + 2 * bn_counts(n), 1.0)


def loss_rtol(n: int) -> float:
    """The same for the paper's loss on that output, relative to the loss (its L1 terms are means
    of non-negative values): the U-Net's sums, VGG16 to pool3 (8091 terms, test_vgg.pool_rtol),
    a Gram matrix's sum over the 16x16 pool1 positions and the largest mean, over pool1's
    n*16*16*64 features, as one sum: 2.2e-4 at n=4, 2.9e-4 at n=8."""
    reductions = tolerances.unet_reductions(4) + 2 * bn_counts(n)
    return tolerances.network_atol([*reductions, 8091, 16 * 16, n * 16 * 16 * 64], 1.0)


def grad_rtol(n: int) -> float:
    """The same for a kernel's gradient of the loss without VGG terms, relative to its layer's
    largest gradient: the forward sums, the backward pass through them again, the L1 means over
    n*SIDE*SIDE*3 pixels and the kernel gradient's own sum over at most n*SIDE*SIDE positions."""
    reductions = tolerances.unet_reductions(4) + 2 * bn_counts(n)
    return tolerances.network_atol([*reductions, *reductions, 4 * n * SIDE * SIDE], 1.0)


def tiny_cfg(model=None, **train_fields) -> config.Config:
    """A 4-level U-Net on 32x32 crops with `train_fields` replaced (and `model` if given)."""
    cfg = config.Config(
        model=model or config.ModelConfig(num_layers=4),
        data=config.DataConfig(image_size=SIDE),
    )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train_fields))


def tiny_batch(n: int = 4, side: int = SIDE, seed: int = 0) -> dict:
    """Smooth coloured waves plus noise, float32 in [0,1]; one 12x9 hole per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / side
    base = np.stack([np.sin(6 * xx + 3 * i) * 0.4 + 0.5 + 0.1 * yy for i in range(3)], -1)
    image = np.clip(base[None] + 0.05 * rng.normal(size=(n, side, side, 3)), 0, 1)
    mask = np.ones((n, side, side, 1))
    for i in range(n):
        y, x = rng.integers(0, side - 12, size=2)
        mask[i, y : y + 12, x : x + 9] = 0
    return {"image": image.astype(np.float32), "mask": mask.astype(np.float32)}


def setup(cfg: config.Config, mesh):
    """(model, optimizer, replicated fresh TrainState) for `cfg` in its compute dtype."""
    model = build_model(cfg.model, train_step.compute_dtype(cfg))
    repl = sharding.replicated(mesh)
    abstract = jax.eval_shape(lambda: train_step.init_variables(model, SIDE, 0))["params"]
    tx = train_step.make_optimizer(cfg, abstract)
    state = jax.jit(
        functools.partial(train_step.create_train_state, model, tx, SIDE, 0), out_shardings=repl
    )()
    return model, tx, state


def step_fn(cfg: config.Config, model, mesh):
    """The jitted train step as `train_and_evaluate` builds it (without donation); it steps the
    state's own optimizer (`state.tx`)."""
    return jax.jit(
        functools.partial(train_step.train_step, model=model, cfg=cfg),
        in_shardings=(
            sharding.replicated(mesh),
            sharding.batch_sharded(mesh),
            sharding.replicated(mesh),
        ),
    )


def run_steps(cfg, state, model, tx, vgg_params, batches, mesh):
    """Applies the train step with optimizer `tx` (whose state `state.opt_state` is) to each
    batch; returns (state, [metrics per step])."""
    step = step_fn(cfg, model, mesh)
    state = state.replace(tx=tx)
    history = []
    for b in batches:
        state, metrics = step(state, sharding.shard_batch(b, mesh), vgg_params)
        history.append(jax.device_get(metrics))
    return state, history
