"""bfloat16 training (`train.compute_dtype=bfloat16`, every GPU config): the train step runs,
parameters and optimizer state stay float32, its loss is close to the float32 loss on the same
batch and parameters, and a short run learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import sharding

from tiny_train import run_steps, setup, tiny_batch, tiny_cfg

# |L_bf16 - L_f32| / L_f32 on the same batch and weights: measured 2.5e-3 (random-init 4-level
# U-Net, 32x32, batch 4, CPU); the README ("Training") states the same 1% bound.
BF16_LOSS_RTOL = 0.01


@pytest.fixture(scope="module")
def mesh():
    return sharding.make_mesh()


def _float_leaves(tree):
    return [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


def test_bf16_step_keeps_float32_state_and_matches_the_float32_loss(mesh, vgg_params):
    f32, bf16 = tiny_cfg(), tiny_cfg(compute_dtype="bfloat16")
    model32, tx32, state = setup(f32, mesh)
    model16, tx16, state16 = setup(bf16, mesh)
    assert all(x.dtype == jnp.float32 for x in _float_leaves(state16))
    batches = [tiny_batch(seed=s) for s in (31, 32)]
    start = jax.device_get(state)
    after16, hist16 = run_steps(bf16, start, model16, tx16, vgg_params, batches, mesh)
    _, hist32 = run_steps(f32, start, model32, tx32, vgg_params, batches[:1], mesh)

    params, opt_state = after16.params, after16.opt_state
    assert all(x.dtype == jnp.float32 for x in _float_leaves(params)), "params left float32"
    assert all(x.dtype == jnp.float32 for x in _float_leaves(opt_state)), "Adam moments too"
    assert all(x.dtype == jnp.float32 for x in _float_leaves(after16.batch_stats))
    assert int(after16.step) == 2 and all(h["finite"] == 1.0 for h in hist16)
    assert all(v.dtype == np.float32 for v in hist16[0].values())
    # The step really moved the float32 parameters (updates are not lost in bf16 rounding).
    moved = jax.tree_util.tree_map(lambda a, b: np.any(a != b), start.params, params)
    assert all(jax.tree_util.tree_leaves(moved))

    rel = abs(hist16[0]["total"] - hist32[0]["total"]) / hist32[0]["total"]
    print(f"bf16 vs f32 loss: {hist16[0]['total']:.5f} vs {hist32[0]['total']:.5f}, rel {rel:.2e}")
    assert rel < BF16_LOSS_RTOL
    assert rel > 0, "the bf16 step computed in float32"


@pytest.mark.slow
def test_short_bf16_run_learns(mesh, vgg_params):
    cfg = tiny_cfg(compute_dtype="bfloat16", learning_rate=1e-3)
    model, tx, state = setup(cfg, mesh)
    batch = tiny_batch(seed=33)
    _, history = run_steps(cfg, state, model, tx, vgg_params, [batch] * 12, mesh)
    totals = [float(h["total"]) for h in history]
    print("bf16 losses:", [round(t, 2) for t in totals[::3]], round(totals[-1], 2))
    assert all(h["finite"] == 1.0 for h in history)
    assert totals[-1] < totals[0] / 5, (totals[0], totals[-1])
