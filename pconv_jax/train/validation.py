"""Validation during training: a fixed held-out set scored every `train.eval_every` steps.

The set is fixed so that numbers are comparable across steps and runs: the first
`train.eval_num_images` images of `train.eval_images` (a folder, "skimage" or "tfds:NAME[split]";
"" = the training DataConfig's evaluation images), centre-cropped to `data.image_size`, each
paired with `train.eval_masks_per_image` masks of a fixed test-mask set (`train.eval_masks`, or,
when "", a set drawn once by the mask generator with seed 0 into workdir/validation_masks) by
the evaluation's deterministic pairing (masks.protocol.pair_masks, seed 0).

Each validation computes l1 (%), PSNR, SSIM and LPIPS (AlexNet) on the composite, as `pconv
evaluate` does, per hole-ratio bucket (N and B pooled) and over all pairs, and writes them to
metrics.jsonl and TensorBoard as `val/<metric>` and `val/<metric>/bucket<b>`. The best step by
`train.eval_best_metric` is recorded in workdir/best.json, and its checkpoint is kept in
workdir/best/ (itself a run directory: config.json + checkpoints/<step>), which
`pconv export --best` exports. The scoring is one jitted step over the same mesh as training.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax import atomic, images
from pconv_jax.config import Config
from pconv_jax.data import eval_set
from pconv_jax.errors import UserError
from pconv_jax.masks import benchmark_sets, protocol
from pconv_jax.masks.protocol import HOLE_RATIO_BUCKETS
from pconv_jax.metrics import lpips, score
from pconv_jax.parallel import sharding
from pconv_jax.store import checkpoint

log = logging.getLogger("pconv_jax.train.validation")

METRICS = ("l1", "psnr", "ssim", "lpips")
# rmse: gridded runs (train/grid_validation.py), area-weighted over the missing cells
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "lpips": False, "rmse": False}
MASK_DIR = "validation_masks"


def _mask_set(cfg: Config, workdir: pathlib.Path, need: int):
    """The test-mask records: the configured folder, or a generated set in the workdir."""
    if cfg.train.eval_masks:
        return protocol.load_mask_set(cfg.train.eval_masks)
    out = workdir / MASK_DIR
    per_cell = math.ceil(need / 12)
    if not (out / "manifest.csv").is_file():
        if jax.process_index() == 0:
            benchmark_sets.make_test_mask_set(out, size=cfg.data.image_size, per_bucket=per_cell)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("pconv_jax validation masks")
    records = protocol.load_mask_set(out)
    if len(records) < need:
        raise UserError(
            f"{out} holds {len(records)} masks, validation needs {need}: delete it to redraw"
        )
    return records


class Validator:
    """Scores the fixed held-out set; `__call__(step, model_vars)` -> {scalar name: value}."""

    def __init__(self, cfg: Config, workdir, model, mesh, global_batch: int):
        t = cfg.train
        if cfg.data.task != "inpaint":
            raise UserError(f"validation scores inpainting; data.task is {cfg.data.task!r}")
        if t.eval_best_metric not in METRICS:
            raise UserError(
                f"train.eval_best_metric must be one of {METRICS}, got {t.eval_best_metric!r}"
            )
        if t.eval_num_images < 1 or t.eval_masks_per_image < 1:
            raise UserError("train.eval_num_images and train.eval_masks_per_image must be >= 1")
        self.cfg, self.workdir = cfg, pathlib.Path(workdir)
        size = cfg.data.image_size
        if size < lpips.MIN_SIZE_PX:
            raise UserError(f"validation needs data.image_size >= {lpips.MIN_SIZE_PX} (LPIPS)")
        source = eval_set.eval_images(
            t.eval_images or cfg.data, size, limit=t.eval_num_images, **_tfds_args(cfg)
        )
        if not t.eval_images and cfg.data.source != "tfds":
            log.warning(
                "validation on the training source's images (%s): not held out; set "
                "train.eval_images to a held-out folder or tfds split",
                cfg.data.source,
            )
        need = len(source) * t.eval_masks_per_image
        records = _mask_set(cfg, self.workdir, need)
        pairs = protocol.pair_masks(len(source), records, 0, t.eval_masks_per_image)
        self.buckets = np.array([p.mask.bucket for p in pairs])
        truth = np.stack([source.load(p.image_index) for p in pairs])
        mask = np.stack([images.read_mask(p.mask.path, size) for p in pairs])
        padded = -len(pairs) % global_batch
        self.truth, self.mask = score.pad_to(len(pairs) + padded, truth, mask)
        self.batch, self.num_pairs = global_batch, len(pairs)
        self.mesh = mesh
        replicated = sharding.replicated(mesh)
        self.lpips_params = jax.device_put(lpips.load_params("alex"), replicated)

        def score_batch(variables, lpips_params, truth_u8, mask):
            truth = truth_u8.astype(jnp.float32) / 255.0
            output = model.apply(variables, truth * mask, mask).astype(jnp.float32)
            return score.score(lpips_params, truth_u8, mask, output)[2]

        batched = sharding.batch_sharded(mesh)
        self._step = jax.jit(
            score_batch,
            in_shardings=(replicated, replicated, batched, batched),
            out_shardings=replicated,  # [batch] vectors: every process reads them
        )
        self.best = checkpoint.read_best(self.workdir)
        log.info(
            "validation set: %d pairs (%d images x %d masks) at %d px",
            len(pairs),
            len(source),
            t.eval_masks_per_image,
            size,
        )

    def _global(self, array: np.ndarray):
        sharded = sharding.batch_sharded(self.mesh)
        return jax.make_array_from_callback(array.shape, sharded, lambda index: array[index])

    def scores(self, model_vars) -> dict[str, np.ndarray]:
        """Per-pair metrics {name: float [num_pairs]} of `model_vars` (running BN statistics)."""
        per_batch = []
        for i in range(0, len(self.truth), self.batch):
            sl = slice(i, i + self.batch)
            args = (self._global(self.truth[sl]), self._global(self.mask[sl]))
            per_batch.append(self._step(model_vars, self.lpips_params, *args))
        fetched = jax.device_get(per_batch)
        return {k: np.concatenate([b[k] for b in fetched])[: self.num_pairs] for k in METRICS}

    def __call__(self, step: int, model_vars) -> dict[str, float]:
        values = self.scores(model_vars)
        scalars = {}
        for name in METRICS:
            scalars[f"val/{name}"] = float(np.mean(values[name]))
            for b in range(len(HOLE_RATIO_BUCKETS)):
                chosen = values[name][self.buckets == b]
                if len(chosen):
                    scalars[f"val/{name}/bucket{b}"] = float(np.mean(chosen))
        return scalars

    def summary(self, step: int, scalars: dict) -> str:
        """The one log line of a validation (summary_line)."""
        return summary_line(step, scalars, self.num_pairs, self.best)

    def is_better(self, value: float) -> bool:
        if self.best is None:
            return True
        higher = HIGHER_IS_BETTER[self.cfg.train.eval_best_metric]
        return value > self.best["value"] if higher else value < self.best["value"]

    def record_best(self, step: int, scalars: dict, model_vars, train_vars) -> bool:
        """Keeps the checkpoint of `step` in workdir/best/ and writes best.json when `step`
        beats the best so far by train.eval_best_metric. Returns whether it did."""
        metric = self.cfg.train.eval_best_metric
        value = scalars[f"val/{metric}"]
        if not self.is_better(value):
            return False
        best_dir = self.workdir / checkpoint.BEST_DIR
        checkpoint.write_config(best_dir, self.cfg)
        ckpts = checkpoint.Checkpoints(best_dir, keep_last=1)
        ckpts.save(step, model_vars, train_vars)
        ckpts.close()  # waits: best.json never names a checkpoint still being written
        self.best = {"step": int(step), "metric": metric, "value": value}
        if jax.process_index() == 0:
            text = json.dumps({**self.best, "higher_is_better": HIGHER_IS_BETTER[metric]})
            atomic.write_text(self.workdir / checkpoint.BEST_FILE, text + "\n")
        return True


def summary_line(step: int, scalars: dict, num_pairs: int, best: dict | None) -> str:
    """'validation at step 100 (24 pairs): l1 2.31%, PSNR 25.10 dB, SSIM 0.842, LPIPS 0.132;
    best step 100 by lpips'."""
    s = scalars
    line = (
        f"validation at step {step} ({num_pairs} pairs): l1 {s['val/l1']:.2f}%, "
        f"PSNR {s['val/psnr']:.2f} dB, SSIM {s['val/ssim']:.3f}, LPIPS {s['val/lpips']:.3f}"
    )
    if best is not None:
        line += f"; best step {best['step']} by {best['metric']}"
    return line


def _tfds_args(cfg: Config) -> dict:
    """train.eval_images="tfds:NAME" reads data.eval_split from data.tfds_data_dir."""
    if not cfg.train.eval_images.startswith("tfds:"):
        return {}
    return {"split": cfg.data.eval_split, "tfds_data_dir": cfg.data.tfds_data_dir}


def maybe_validate(validator, step: int, done: bool, state, writer) -> dict:
    """The training loop's hook: validates at every train.eval_every-th step and at the last
    step (`done`), writes the scalars, logs the summary line, keeps the best checkpoint.
    Returns the scalars ({} when nothing ran)."""
    every = validator.cfg.train.eval_every if validator else 0
    if validator is None or not ((every and step % every == 0) or done):
        return {}
    scalars = validator(step, state.model_vars())
    validator.record_best(step, scalars, state.model_vars(), state.train_vars())
    writer.write_scalars(step, scalars)
    log.info("%s", validator.summary(step, scalars))
    return scalars


def make_validator(cfg: Config, workdir, model, mesh, global_batch: int, kind=None):
    """A `kind` (default Validator; grid_validation.GridValidator for gridded runs) when
    train.eval_every > 0 or train.eval_at_end, else None."""
    kind = kind or Validator
    if cfg.train.eval_every < 0:
        raise UserError(f"train.eval_every must be >= 0, got {cfg.train.eval_every}")
    if not (cfg.train.eval_every or cfg.train.eval_at_end):
        return None
    return kind(cfg, workdir, model, mesh, global_batch)
