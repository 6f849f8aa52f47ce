"""The training loop: resume or initialise, train, log, sample, validate, checkpoint, stop.

One `jax.jit` train step (`train_step` in step.py) over a 1-D mesh of every device of every process;
stops (max_seconds, a signal, a non-finite loss) are agreed by all processes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from pconv_jax import config, images
from pconv_jax.config import Config
from pconv_jax.data import pipeline
from pconv_jax.errors import UserError
from pconv_jax.nn import vgg
from pconv_jax.nn.losses import uses_vgg
from pconv_jax.nn.model import abstract_variables, build_model
from pconv_jax.parallel import distributed, sharding
from pconv_jax.store import checkpoint, trained, trees
from pconv_jax.train import preemption, validation, workdir_lock, writers
from pconv_jax.train.step import (
    TrainState,
    compute_dtype,
    create_train_state,
    learning_rate_at,
    learning_rate_schedule,
    make_optimizer,
    network_input,
    param_labels,
    predict,
    train_step,
)

log = logging.getLogger("pconv_jax.train.loop")


def _abstract_state(model, tx, cfg: Config, replicated) -> TrainState:
    shapes = jax.eval_shape(
        functools.partial(create_train_state, model, tx, cfg.data.image_size, cfg.train.seed)
    )
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), shapes
    )


def _initial_state(cfg: Config, workdir, model, tx, ckpts, replicated) -> TrainState:
    """Where training starts, in this order:
    1. this workdir's latest checkpoint (re-running a command resumes it);
    2. `train.init_from`: a stage-1 workdir's (or an export's) params and BN statistics, fresh
       optimizer, step 0;
    3. a fresh He-initialised model.
    """
    abstract = _abstract_state(model, tx, cfg, replicated)
    found = checkpoint.restore_newest_intact(
        ckpts, abstract.model_vars(), abstract.train_vars(), agree=distributed.any_process
    )
    if found is not None:
        step, model_vars, train_vars = found
        log.info("resuming %s from its checkpoint at step %d", workdir, step)
        return TrainState(apply_fn=model.apply, tx=tx, **model_vars, **train_vars)
    # init_from is read (and checked) before the fresh state is compiled: a mismatch fails fast.
    loaded = _init_from(cfg, abstract, replicated) if cfg.train.init_from else None
    fresh = jax.jit(
        functools.partial(create_train_state, model, tx, cfg.data.image_size, cfg.train.seed),
        out_shardings=replicated,
    )()
    if loaded is not None:
        model_vars, step = loaded
        log.info(
            "initialised from %s step %d (params and BN statistics; new optimizer state)",
            cfg.train.init_from,
            step,
        )
        return dataclasses.replace(
            fresh,
            params=model_vars["params"],
            batch_stats=model_vars["batch_stats"],
            opt_state=jax.jit(tx.init, out_shardings=replicated)(model_vars["params"]),
        )
    return fresh


def _init_from(cfg: Config, abstract, replicated) -> tuple[dict, int]:
    """(model variables, step) of `train.init_from`: a run directory's latest checkpoint, or an
    export file (`pconv export`, `pconv convert`) whose model config must equal this run's."""
    path = cfg.train.init_from
    kind = trained.model_kind(path)
    if kind == "onnx":
        raise UserError(
            f"train.init_from={path} is an ONNX export (a graph, no trainable variables): "
            "give the run directory or its .npz export"
        )
    if kind == "run":
        source = checkpoint.Checkpoints(path, read_only=True)
        step = source.latest_step()
        if step is None:
            raise FileNotFoundError(f"train.init_from={path} holds no checkpoint")
        model_vars, _ = source.restore(step, abstract.model_vars())
        source.close()
        return model_vars, step
    export = trained.load_export(path)
    theirs, ours = config.to_dict(export.config)["model"], config.to_dict(cfg)["model"]
    differ = [f"model.{k}={_as_override(v)}" for k, v in theirs.items() if ours[k] != v]
    if differ:
        raise UserError(
            f"train.init_from={path} is a different model; run with --set " + " --set ".join(differ)
        )
    trees.check_same_tree(export.variables, abstract.model_vars(), path)
    variables = {k: export.variables[k] for k in ("params", "batch_stats")}
    return jax.device_put(variables, replicated), export.step


def _as_override(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _log_frozen(cfg: Config, params) -> None:
    labels = jax.tree_util.tree_leaves_with_path(
        param_labels(params, cfg.train.freeze_encoder_bn_params, cfg.train.freeze_encoder)
    )
    frozen = [trees.path_str(p) for p, label in labels if label == "frozen"]
    if cfg.train.freeze_encoder:
        log.info("frozen: the whole encoder (%d parameters, BN statistics)", len(frozen))
        return
    if cfg.train.freeze_encoder_bn_stats:
        log.info("frozen: encoder BN running statistics (used, never updated)")
    if frozen:
        log.info(
            "frozen: %d encoder BN parameters excluded from updates: %s",
            len(frozen),
            ", ".join(frozen),
        )
    if not frozen and not cfg.train.freeze_encoder_bn_stats:
        log.info("frozen: nothing (BN trains everywhere)")


def _lock_workdir(workdir) -> workdir_lock.WorkdirLock | None:
    """Process 0 locks the run directory; every process fails if that failed."""
    lock, error = None, None
    if jax.process_index() == 0:
        lock = workdir_lock.WorkdirLock(workdir)
        try:
            lock.acquire()
        except UserError as e:  # held by another trainer, or not a usable directory
            error = e
    if distributed.any_process(error is not None):
        if error is not None:
            raise error
        raise workdir_lock.WorkdirLocked(f"process 0 could not lock {workdir} (see its log)")
    return lock


def sample_grid(batch, output, model_cfg, gridded: bool = False) -> np.ndarray:
    """A PNG grid of up to 4 examples: input, output, composite, truth (uint8).

    The input column is what the network sees: `step.network_input(batch)` with, for the Conv
    baseline, its hole_fill colour in the holes (PConv sees zeros there, and the mask).
    Gridded fields (`gridded`) show their first channel in grey, 0 as mid-grey and the largest
    absolute truth value of the shown rows as black or white.
    Args: batch of numpy arrays ('image', 'mask' [N,H,W,1], maybe 'input'), output [N,H,W,C].
    """
    mask = np.asarray(batch["mask"])[:4]
    truth = np.asarray(batch["image"])[:4]
    shown_input = np.asarray(network_input(batch))[:4]
    if gridded:
        scale = max(float(np.abs(truth[..., :1]).max()), 1e-12)
        output = np.asarray(output)[:4, ..., :1]
        columns = [shown_input[..., :1], output, truth[..., :1] * mask + output * (1 - mask)]
        return images.image_grid([0.5 + c / (2 * scale) for c in [*columns, truth[..., :1]]])
    if not model_cfg.partial and model_cfg.hole_fill:
        fill = np.asarray(model_cfg.hole_fill, np.float32).reshape(1, 1, 1, 3)
        shown_input = shown_input * mask + fill * (1.0 - mask)
    output = np.clip(np.asarray(output)[:4], 0.0, 1.0)
    composite = truth * mask + output * (1.0 - mask)
    return images.image_grid([shown_input, output, composite, truth])


def train_and_evaluate(cfg: Config, workdir: str | pathlib.Path) -> dict:
    """Trains per `cfg`, writing config, checkpoints, metrics and samples into `workdir`.

    Re-running on the same workdir resumes from its last complete checkpoint with the data
    pipeline at the same position. Returns the last logged metrics.
    Raises FloatingPointError (after keeping the last good checkpoint) on a non-finite loss;
    preemption.Preempted after checkpointing on SIGTERM (to any process);
    workdir_lock.WorkdirLocked when another trainer holds `workdir`; and
    checkpoint.NoIntactCheckpoint when it has checkpoints and none restores. Several processes
    (jax.distributed started) train one run on one global mesh and take every stop together.
    """
    workdir = pathlib.Path(workdir)
    # Bad choices (a Config built in Python) and inconsistent data settings fail before anything
    # is written or loaded.
    config.validate(cfg)
    pipeline.validate(cfg.data)
    learning_rate_schedule(cfg)  # an inconsistent schedule fails here
    lock = _lock_workdir(workdir)
    try:
        with preemption.SignalFlag() as signals:
            return _train(cfg, workdir, signals)
    finally:
        if lock is not None:
            lock.release()


# Long: one trainer read top to bottom in big_vision's phases (STYLE.md 2.2 and 4).
def _train(cfg: Config, workdir: pathlib.Path, signals: preemption.SignalFlag) -> dict:
    if jax.process_index() == 0:
        checkpoint.write_config(workdir, cfg)
    log.info("config:\n%s", config.to_json(cfg))
    mesh = sharding.make_mesh()
    global_batch = cfg.train.batch_size_per_device * mesh.size
    sharding.check_batch_size(global_batch, mesh)
    replicated = sharding.replicated(mesh)
    dtype = compute_dtype(cfg)
    model = build_model(cfg.model, dtype)
    vgg_params = None  # perceptual and style weights 0 (gridded data): VGG16 never loaded
    if uses_vgg(cfg.loss):
        vgg_params = jax.device_put(vgg.load_vgg16_params(cfg.loss.vgg_weights), replicated)

    abstract_params = abstract_variables(model)["params"]
    tx = make_optimizer(cfg, abstract_params)
    _log_frozen(cfg, abstract_params)
    ckpts = checkpoint.Checkpoints(workdir, cfg.train.keep_last, cfg.train.keep_every)
    try:
        state = _initial_state(cfg, workdir, model, tx, ckpts, replicated)
    except BaseException:
        ckpts.close()
        raise
    start = int(state.step)
    jitted_step = jax.jit(
        functools.partial(train_step, model=model, cfg=cfg),
        in_shardings=(replicated, sharding.batch_sharded(mesh), replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    step_fn: Callable[..., Any] = jitted_step  # compiled ahead of the first step, below
    predict_fn = jax.jit(functools.partial(predict, model=model))
    writer = writers.MetricWriter(workdir)
    kind = None
    if cfg.data.source == "grids":  # xarray: imported for gridded runs only
        from pconv_jax.train.grid_validation import GridValidator

        kind = GridValidator
    validator = validation.make_validator(cfg, workdir, model, mesh, global_batch, kind)
    progress = writers.ProgressBar(start, cfg.train.num_steps)
    metrics_log = writers.StepMetrics(
        writer,
        progress,
        global_batch,
        functools.partial(learning_rate_at, cfg),
        ckpts.latest_step,
    )
    t_start = time.time()
    try:
        with pipeline.train_batches(
            cfg.data, global_batch, cfg.train.seed, start_step=start
        ) as batches:
            step = start
            while step < cfg.train.num_steps:
                batch = sharding.shard_batch(next(batches), mesh)
                first = metrics_log.t_mark is None
                if first:  # compile first, then meet: see distributed.wait_for_all
                    step_fn = jitted_step.lower(state, batch, vgg_params).compile()
                    distributed.wait_for_all("pconv train step compiled")
                state, metrics = step_fn(state, batch, vgg_params)
                step += 1
                metrics_log.add(step, metrics)
                if first:  # the first step includes compilation: not timed
                    jax.block_until_ready(metrics)
                    log.info("compiled and ran the first step in %.1f s", time.time() - t_start)
                    metrics_log.start_timing()
                # Every process takes the same stop decision (one small collective a step
                # when there are several): a process stopping alone would hang the others.
                out_of_time, signalled = distributed.any_processes(
                    bool(cfg.train.max_seconds and time.time() - t_start > cfg.train.max_seconds),
                    signals.name is not None,
                )
                done = step == cfg.train.num_steps or out_of_time or signalled
                if step % cfg.train.log_every == 0 or done:
                    metrics_log.flush(step)
                if step % cfg.train.sample_every == 0 or done:
                    gridded = cfg.data.source == "grids"
                    _save_samples(workdir, step, state, batch, predict_fn, cfg.model, mesh, gridded)
                if step % cfg.train.ckpt_every == 0 or done:
                    metrics_log.flush(step)
                    ckpts.save(step, state.model_vars(), state.train_vars())
                scalars = validation.maybe_validate(validator, step, done, state, writer)
                metrics_log.last.update(scalars)
                if signalled and step < cfg.train.num_steps:  # else it simply finished
                    ckpts.wait()
                    log.info("checkpointed step %d after a preemption signal", step)
                    raise preemption.Preempted(step, signals.name or "a signal on another process")
                if out_of_time:
                    log.info(
                        "stopping at step %d: train.max_seconds=%s reached",
                        step,
                        cfg.train.max_seconds,
                    )
                    break
            log.info("skipped unreadable images: %d", getattr(batches, "num_skipped", 0))
    finally:
        progress.close()
        ckpts.close()
        writer.close()
    return metrics_log.last


def _save_samples(workdir, step, state, batch, predict_fn, model_cfg, mesh, gridded) -> None:
    """workdir/samples/<step>.png: the first rows of the global batch (sample_grid)."""
    output = predict_fn(state.model_vars(), network_input(batch), batch["mask"])
    # The first rows of the global batch, replicated: they may live on other processes' devices.
    shown, output = distributed.first_rows((batch, output), 4, mesh)
    if jax.process_index() == 0:
        grid = sample_grid(shown, output, model_cfg, gridded)
        images.save_png(grid, pathlib.Path(workdir) / "samples" / f"{step:07d}.png")
