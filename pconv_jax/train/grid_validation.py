"""Validation of gridded runs (`data.source=grids`): area-weighted RMSE over held-out gaps.

The set is fixed, so numbers compare across steps and runs: every time step of
`data.grid_eval_files` (held-out files, turned into anomalies against each file's own per-cell
time mean as in training and in `pconv evaluate --grid`) under every pattern of
`data.grid_coverage_files` (observational coverage regridded to the grid). Each validation
infills them with running BN statistics in one jitted step over the training mesh and scores the
result with the evaluation's own scores (metrics/grid_scores.py) over the missing cells:
`val/rmse` and `val/bias` pooled over every pair, `val/rmse/<pattern>` per coverage pattern, in
the variable's units (K). The best step by `val/rmse` is kept in workdir/best/ as for images
(`Validator.record_best`).
"""

from __future__ import annotations

import logging
import pathlib

import jax
import numpy as np

from pconv_jax.config import Config
from pconv_jax.data import grid_train
from pconv_jax.errors import UserError
from pconv_jax.metrics import grid_scores, score
from pconv_jax.parallel import sharding
from pconv_jax.store import checkpoint
from pconv_jax.train import validation

log = logging.getLogger("pconv_jax.train.grid_validation")


class GridValidator(validation.Validator):
    """Scores the held-out fields under the coverage patterns; see the module docstring."""

    def __init__(self, cfg: Config, workdir, model, mesh, global_batch: int):
        # The image Validator's __init__ reads photos and LPIPS weights: not called. What its
        # record_best / is_better use is set here (cfg, workdir, best).
        if cfg.train.eval_best_metric != "rmse":
            raise UserError(
                "gridded runs pick their best step by rmse: set train.eval_best_metric=rmse"
            )
        if not cfg.data.grid_eval_files:
            raise UserError("validation of a gridded run needs data.grid_eval_files (held out)")
        self.cfg, self.workdir, self.mesh = cfg, pathlib.Path(workdir), mesh
        fields = grid_train.read_anomalies(cfg.data.grid_eval_files, cfg.data.grid_var)
        patterns = grid_train.coverage_patterns(cfg.data, fields.lat, fields.lon)
        if not patterns:
            raise UserError("validation of a gridded run needs data.grid_coverage_files")
        self.lat = fields.lat
        self.pattern_names = list(patterns)
        count = len(fields.values)
        # Pair k: field k % count under pattern k // count.
        truth = np.concatenate([fields.values] * len(patterns))
        mask = np.repeat(np.stack(list(patterns.values()))[:, None, ..., None], count, axis=1)
        mask = mask.reshape(-1, *mask.shape[2:])
        self.num_pairs, self.fields_per_pattern = len(truth), count
        self.batch = global_batch
        padded = -len(truth) % global_batch
        self.truth, self.mask = score.pad_to(len(truth) + padded, truth, mask)
        replicated, batched = sharding.replicated(mesh), sharding.batch_sharded(mesh)

        def infill(variables, truth, mask):
            return model.apply(variables, truth * mask, mask).astype(np.float32)

        self._step = jax.jit(
            infill, in_shardings=(replicated, batched, batched), out_shardings=replicated
        )
        self.best = checkpoint.read_best(self.workdir)
        log.info(
            "validation set: %d pairs (%d held-out fields x %d coverage patterns)",
            self.num_pairs,
            count,
            len(patterns),
        )

    def predictions(self, model_vars) -> np.ndarray:
        """The network's output for every pair, float32 [num_pairs, H, W, C]."""
        outputs = []
        for i in range(0, len(self.truth), self.batch):
            sl = slice(i, i + self.batch)
            args = (self._global(self.truth[sl]), self._global(self.mask[sl]))
            outputs.append(self._step(model_vars, *args))
        return np.concatenate(jax.device_get(outputs))[: self.num_pairs]

    def __call__(self, step: int, model_vars) -> dict[str, float]:
        output = self.predictions(model_vars)[..., 0]
        truth = self.truth[: self.num_pairs, ..., 0]
        mask = self.mask[: self.num_pairs, ..., 0]
        pooled = grid_scores.score(truth, output, mask, self.lat)
        scalars = {"val/rmse": pooled["rmse"], "val/bias": pooled["bias"]}
        for p, name in enumerate(self.pattern_names):
            part = slice(p * self.fields_per_pattern, (p + 1) * self.fields_per_pattern)
            scores = grid_scores.score(truth[part], output[part], mask[part], self.lat)
            scalars[f"val/rmse/{name}"] = scores["rmse"]
        return scalars

    def summary(self, step: int, scalars: dict) -> str:
        """'validation at step 100 (330 pairs): area-weighted RMSE 0.512 over the gaps (...)'."""
        parts = ", ".join(f"{n} {scalars[f'val/rmse/{n}']:.3f}" for n in self.pattern_names)
        line = (
            f"validation at step {step} ({self.num_pairs} pairs): area-weighted RMSE over the "
            f"gaps {scalars['val/rmse']:.4f} (bias {scalars['val/bias']:+.4f}; {parts})"
        )
        if self.best is not None:
            line += f"; best step {self.best['step']} by {self.best['metric']}"
        return line
