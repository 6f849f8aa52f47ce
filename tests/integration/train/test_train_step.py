"""The train step learns: 60 steps on one tiny batch cut the loss by more than 3x. The step's
other properties (data parallelism, stage 2, non-finite losses): tests/unit/train/test_train.py."""

from pconv_jax.parallel import sharding

from tiny_train import run_steps, setup, tiny_batch, tiny_cfg


def test_loss_falls_when_overfitting_one_batch(vgg_params):
    mesh = sharding.make_mesh()
    cfg = tiny_cfg(learning_rate=1e-3)
    model, tx, state = setup(cfg, mesh)
    batch = tiny_batch(seed=4)
    _, history = run_steps(cfg, state, model, tx, vgg_params, [batch] * 60, mesh)
    first, last = history[0]["total"], history[-1]["total"]
    assert last < first / 3, (first, last)
    assert all(h["finite"] == 1.0 for h in history)
