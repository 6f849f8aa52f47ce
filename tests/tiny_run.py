"""A tiny trained-looking run directory for inference tests: num_layers=4, random weights."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.store import checkpoint


def make_tiny_run(workdir: pathlib.Path, step: int = 7, seed: int = 0) -> config.Config:
    """Writes config.json and one orbax checkpoint with random weights and BN statistics that
    are not the initial ones (so running statistics and biases matter for the output)."""
    cfg = config.Config(
        name="tiny",
        model=config.ModelConfig(num_layers=4),
        data=config.DataConfig(image_size=32),
    )
    model = build_model(cfg.model)
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 16, 16, 1)))
    )
    rng = np.random.default_rng(seed)

    # Drawn with numpy: `model.init` on CPU spends ~15 s generating the 512-channel kernels.
    def draw(path, x):
        name = path[-1].key
        if name == "kernel":  # He normal, fan-in, as the model's initialiser
            fan_in = int(np.prod(x.shape[:-1]))
            return rng.normal(0.0, np.sqrt(2.0 / fan_in), x.shape).astype(np.float32)
        if name == "mean":
            return rng.normal(0.0, 0.1, x.shape).astype(np.float32)
        if name == "var":
            return rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
        if name == "scale":
            return rng.uniform(0.8, 1.2, x.shape).astype(np.float32)
        return rng.normal(0.0, 0.05, x.shape).astype(np.float32)  # biases

    variables = jax.tree_util.tree_map_with_path(draw, shapes)
    checkpoint.write_config(workdir, cfg)
    ckpts = checkpoint.Checkpoints(workdir)
    ckpts.save(step, dict(variables), {"step": jnp.int32(step)})
    ckpts.close()
    return cfg
