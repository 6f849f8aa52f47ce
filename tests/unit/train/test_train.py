"""The train step: data parallelism, stage-2 freezing, non-finite handling, restore. Learning
(a 60-step overfit): tests/integration/train/test_train_step.py."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax import config
from pconv_jax.nn.model import build_model
from pconv_jax.parallel import sharding
from pconv_jax.store import checkpoint, trees
from pconv_jax.train import loop
from pconv_jax.train import step as train_step

import tolerances
from tiny_train import grad_rtol, loss_rtol, run_steps, setup, tiny_batch, tiny_cfg, unet_rtol


@pytest.mark.parametrize("vgg_terms", [True, False])
def test_data_parallel_step_equals_single_device_step(vgg_params, vgg_terms):
    assert jax.device_count() == 4, "tests/conftest.py sets 4 fake CPU devices"
    cfg = tiny_cfg()
    if not vgg_terms:
        cfg = dataclasses.replace(cfg, loss=config.LossConfig(perceptual=0.0, style=0.0))
    batch = tiny_batch(n=8)
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = sharding.make_mesh(devices)
        model, _, state = setup(cfg, mesh)
        loss_fn = functools.partial(train_step.loss_and_updates, model=model, cfg=cfg)
        repl, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
        fn = jax.jit(
            jax.value_and_grad(loss_fn, has_aux=True), in_shardings=(repl, repl, split, repl)
        )
        sharded = sharding.shard_batch(batch, mesh)
        assert len(sharded["image"].sharding.device_set) == len(devices)
        (loss, (terms, stats)), grads = fn(state.params, state.batch_stats, sharded, vgg_params)
        results.append(jax.device_get((loss, terms, stats, grads)))
    (l1, t1, s1, g1), (l4, t4, s4, g4) = results
    # One device against four: two XLA programs summing in other orders. The bounds are derived
    # from float32 rounding in tiny_train (loss_rtol, unet_rtol, grad_rtol; tests/tolerances.py).
    np.testing.assert_allclose(l1, l4, rtol=loss_rtol(8))
    chex.assert_trees_all_close(t1, t4, rtol=loss_rtol(8), atol=loss_rtol(8) * float(l1))
    # BN statistics are those of the global batch on both meshes (of He-initialised
    # convolutions' outputs: unit scale).
    chex.assert_trees_all_close(s1, s4, rtol=unet_rtol(8), atol=unet_rtol(8))
    flat1, flat4 = (
        np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)]) for g in (g1, g4)
    )
    relative = np.linalg.norm(flat1 - flat4) / np.linalg.norm(flat1)
    if vgg_terms:
        # Not a rounding bound: the perceptual/style L1 terms compare composite and ground-truth
        # features that are equal wherever the receptive field is all valid: |a - b| is 0 on one
        # mesh and ±1e-7 on the other (another summation order), and the sign of its gradient
        # there is arbitrary, so such positions' share of the gradient differs in full.
        # Measured: 2.6e-4 with those terms, 5.8e-7 without them (the case below).
        assert relative < 1e-3
    else:
        assert relative < grad_rtol(8)
        # Each layer's gradient within grad_rtol of its largest entry.
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(g1), jax.tree_util.tree_leaves(g4)
        ):
            atol = grad_rtol(8) * float(np.abs(a).max())
            np.testing.assert_allclose(b, a, rtol=0, atol=atol, err_msg=jax.tree_util.keystr(path))


def test_stage2_freezes_encoder_bn_and_trains_the_rest(vgg_params):
    mesh = sharding.make_mesh()
    stage1 = tiny_cfg()
    model, tx, state = setup(stage1, mesh)
    state, _ = run_steps(stage1, state, model, tx, vgg_params, [tiny_batch(seed=1)], mesh)
    stage2 = tiny_cfg(
        freeze_encoder_bn_stats=True, freeze_encoder_bn_params=True, learning_rate=5e-5
    )
    tx2 = train_step.make_optimizer(stage2, state.params)
    before = jax.device_get(state.model_vars())
    state2 = state.replace(opt_state=tx2.init(state.params))
    state2, _ = run_steps(
        stage2, state2, model, tx2, vgg_params, [tiny_batch(seed=s) for s in (2, 3)], mesh
    )
    after = jax.device_get(state2.model_vars())
    for name in before["batch_stats"]:
        for collection in ("batch_stats", "params"):
            for key, value in before[collection][name]["bn"].items():
                same = np.array_equal(value, after[collection][name]["bn"][key])
                assert same == name.startswith("enc"), (collection, name, key)
    for name, module in before["params"].items():
        assert not np.array_equal(module["conv"]["kernel"], after["params"][name]["conv"]["kernel"])


def test_non_finite_loss_leaves_state_unchanged(vgg_params):
    mesh = sharding.make_mesh()
    cfg = tiny_cfg()
    model, tx, state = setup(cfg, mesh)
    before = jax.device_get(state)
    bad = tiny_batch(seed=5)
    bad["image"][0, 0, 0, 0] = np.nan
    after, history = run_steps(cfg, state, model, tx, vgg_params, [bad], mesh)
    assert history[0]["finite"] == 0.0
    chex.assert_trees_all_equal(before, jax.device_get(after))


def test_checkpoint_restores_on_another_device_count_and_is_strict(tmp_path, vgg_params):
    cfg = tiny_cfg()
    mesh4 = sharding.make_mesh()
    model, tx, state = setup(cfg, mesh4)
    state, _ = run_steps(cfg, state, model, tx, vgg_params, [tiny_batch(seed=6)], mesh4)
    ckpts = checkpoint.Checkpoints(tmp_path)
    ckpts.save(1, state.model_vars(), state.train_vars())
    ckpts.close()

    mesh1 = sharding.make_mesh(jax.devices()[:1])
    abstract = loop._abstract_state(model, tx, cfg, sharding.replicated(mesh1))
    ckpts = checkpoint.Checkpoints(tmp_path)
    model_vars, train_vars = ckpts.restore(1, abstract.model_vars(), abstract.train_vars())
    chex.assert_trees_all_equal(jax.device_get(model_vars), jax.device_get(state.model_vars()))
    assert int(train_vars["step"]) == 1
    assert model_vars["params"]["enc1"]["conv"]["kernel"].sharding.device_set == {jax.devices()[0]}

    other = build_model(dataclasses.replace(cfg.model, num_layers=5))
    other_shapes = jax.eval_shape(lambda: train_step.init_variables(other, 32, 0))
    with pytest.raises(ValueError, match="lacks batch_stats/dec5/bn/mean that the model expects"):
        ckpts.restore(1, other_shapes)
    conv = build_model(dataclasses.replace(cfg.model, hole_fill=()))
    wider = jax.tree_util.tree_map(
        lambda x: x, jax.eval_shape(lambda: train_step.init_variables(conv, 32, 0))
    )
    wider["params"]["dec1"]["conv"]["kernel"] = jax.ShapeDtypeStruct((3, 3, 67, 4), jnp.float32)
    with pytest.raises(ValueError, match="dec1/conv/kernel has shape \\(3, 3, 67, 3\\)"):
        ckpts.restore(1, wider)
    ckpts.close()


def test_param_labels_freeze_only_encoder_bn():
    model = build_model(config.ModelConfig(num_layers=4))
    params = jax.eval_shape(lambda: train_step.init_variables(model, 32, 0))["params"]
    labels = jax.tree_util.tree_leaves_with_path(train_step.param_labels(params, True))
    frozen = sorted(trees.path_str(p) for p, label in labels if label == "frozen")
    assert frozen == [f"enc{i}/bn/{k}" for i in (2, 3, 4) for k in ("bias", "scale")]
    none = train_step.param_labels(params, False)
    assert set(jax.tree_util.tree_leaves(none)) == {"trainable"}


@pytest.mark.parametrize("partial", [True, False])
def test_sample_grid_input_column_never_shows_the_truth_in_the_holes(partial):
    # Truth: a distinctive grey 0.5 everywhere; holes in the left half. Expected input column
    # (computed here): 0 in the holes for PConv, the ImageNet-mean hole_fill for the Conv
    # baseline; the truth only at known pixels.
    truth = np.full((2, 8, 8, 3), 0.5, np.float32)
    mask = np.ones((2, 8, 8, 1), np.float32)
    mask[:, :, :4] = 0.0
    batch = {"image": truth, "mask": mask}
    model_cfg = config.ModelConfig(num_layers=3, partial=partial)
    grid = loop.sample_grid(batch, np.zeros_like(truth), model_cfg)
    pad = 2
    shown = grid[pad : pad + 8, pad : pad + 8]  # row 0, column 0: the input
    fill = (0.0, 0.0, 0.0) if partial else config.IMAGENET_MEAN
    expected_hole = np.round(np.asarray(fill) * 255).astype(np.uint8)
    assert (shown[:, :4] == expected_hole).all()
    assert (shown[:, 4:] == 128).all()  # known pixels: round(0.5 * 255)
    assert (grid[pad : pad + 8, 3 * (8 + pad) + pad :][:, :8] == 128).all()  # truth column
    # The network is fed the same: network_input zeroes the holes.
    np.testing.assert_array_equal(train_step.network_input(batch)[:, :, :4], 0.0)


def test_bn_running_averages_decay_like_pytorch_momentum_0_1(vgg_params):
    """Training's default BN decay: running <- 0.9 * running + 0.1 * batch statistic (PyTorch's
    BatchNorm2d momentum 0.1). The batch statistics are recomputed here in numpy (float64) from
    each BN layer's input, captured in a second forward: the mean over N, H, W and the biased
    variance, which is what Flax's BatchNorm averages (PyTorch averages the unbiased one)."""
    cfg = tiny_cfg()  # the default ModelConfig apart from its depth
    mesh = sharding.make_mesh(jax.devices()[:1])
    model, _, state = setup(cfg, mesh)
    rng = np.random.default_rng(0)
    old = jax.tree_util.tree_map(  # running statistics far from the batch's: the decay shows
        lambda x: rng.uniform(0.5, 2.0, x.shape).astype(np.float32), state.batch_stats
    )
    batch = tiny_batch(n=4)
    # Both jitted: eager, the U-Net and VGG run op by op (over a minute under load).
    loss_fn = jax.jit(functools.partial(train_step.loss_and_updates, model=model, cfg=cfg))
    _, (_, new) = loss_fn(state.params, old, batch, vgg_params)
    capture = jax.jit(
        lambda variables, inputs, mask: model.apply(
            variables,
            inputs,
            mask,
            train=True,
            capture_intermediates=lambda module, method: module.name == "conv",
            mutable=["batch_stats", "intermediates"],
        )
    )
    _, captured = capture(
        {"params": state.params, "batch_stats": old},
        train_step.network_input(batch),
        batch["mask"],
    )
    assert sorted(new) == sorted(old) and len(new) == 2 * cfg.model.num_layers - 2
    for layer, stats in new.items():
        (conv_out,) = captured["intermediates"][layer]["conv"]["__call__"]
        y = np.asarray(conv_out[0] if isinstance(conv_out, tuple) else conv_out, np.float64)
        batch_mean, batch_var = y.mean(axis=(0, 1, 2)), y.var(axis=(0, 1, 2))
        expected = {
            "mean": 0.9 * old[layer]["bn"]["mean"] + 0.1 * batch_mean,
            "var": 0.9 * old[layer]["bn"]["var"] + 0.1 * batch_var,
        }
        count = y.shape[0] * y.shape[1] * y.shape[2]
        for name in ("mean", "var"):
            # float32 means of `count` values (of squares, for the variance) against float64:
            # tolerances.sum_atol at the largest magnitude summed.
            scale = float(np.abs(y).max()) ** (2 if name == "var" else 1)
            np.testing.assert_allclose(
                np.asarray(stats["bn"][name]),
                expected[name],
                rtol=0,
                atol=tolerances.sum_atol(count, scale),
                err_msg=f"{layer}/{name}",
            )
