"""Loading a trained model for inference: the config, the module and its variables."""

from __future__ import annotations

import pathlib

import jax

from pconv_jax import checkpoint
from pconv_jax.config import Config
from pconv_jax.model import build_model


def load_trained_model(workdir: str | pathlib.Path, step: int | None = None, dtype=None):
    """Reads a training run directory (the `--workdir` of `pconv train`).

    Args:
      workdir: run directory holding config.json and checkpoints/.
      step: checkpoint step to load (default: the latest).
      dtype: compute dtype for the returned module (None = float32).
    Returns:
      (config, PConvUNet module, {'params', 'batch_stats'}) with arrays on the default device.
    """
    cfg: Config = checkpoint.read_config(workdir)
    model = build_model(cfg.model, dtype)
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    try:
        step = ckpts.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{workdir} holds no complete checkpoint")
        if step not in ckpts.all_steps():
            raise FileNotFoundError(
                f"{workdir} has no checkpoint at step {step}: {ckpts.all_steps()}"
            )
        side = 2**cfg.model.num_layers
        # local: in a multi-process run (pconv evaluate) jax.devices()[0] may be another process's
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        shapes = jax.eval_shape(
            lambda: model.init(
                jax.random.key(0),
                jax.numpy.zeros((1, side, side, 3)),
                jax.numpy.ones((1, side, side, 1)),
            )
        )
        target = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes
        )
        variables, _ = ckpts.restore(step, target)
    finally:
        ckpts.close()
    return cfg, model, variables
