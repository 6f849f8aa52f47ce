"""The moving parts of `pconv evaluate`: batch runners for models and baselines, prefetching,
progress and timing, and the per-pair side files (example outputs, FID features).

A runner is `run_batch(pairs, truth_u8 [n, S, S, 3], mask float32 [n, S, S, 1] (1 = known))
-> (output_u8, composite_u8, metrics)` with n = len(pairs) <= batch_size: outputs uint8
[n, S, S, 3] (output clipped to [0, 1]; composite = truth * mask + output * (1 - mask), or the
output itself when scoring "raw"), metrics {name: float32 [n]} computed on the float composite
(LPIPS with the AlexNet- or VGG-lin weights passed to the jitted step as an argument, not baked
in as constants). Batches are padded to batch_size (repeating the last pair), so everything
jitted compiles once.
"""

from __future__ import annotations

import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm import tqdm

from pconv_jax import atomic, images
from pconv_jax.errors import UserError
from pconv_jax.eval import baselines
from pconv_jax.metrics import fid, inception, lpips
from pconv_jax.metrics.score import pad_to, score
from pconv_jax.parallel import sharding
from pconv_jax.store import trained


def _trim(tree, n: int):
    return jax.tree.map(lambda x: np.asarray(x)[:n], tree)


def model_runner(
    method: str,
    workdir: str | None,
    step: int | None,
    size: int,
    batch_size: int,
    lpips_net: str = "alex",
):
    """A runner for a `pconv train` run directory, sharded over all local devices.

    Returns:
      (run_batch, the checkpoint step used, a description for the table's notes).
    """
    if workdir is None:
        raise UserError(f"--method {method} needs --checkpoint RUN_DIR (a `pconv train` run)")
    loaded = trained.load(workdir, step)
    cfg, model, variables, step = loaded.config, loaded.model, loaded.variables, loaded.step
    if cfg.model.partial != (method == "pconv"):
        held, right = ("PConv", "pconv") if cfg.model.partial else ("Conv baseline", "conv")
        raise UserError(
            f"{workdir} holds a {held} model (model.partial={cfg.model.partial}), not what "
            f"--method {method} evaluates; use --method {right}"
        )
    if size % 2**cfg.model.num_layers:
        raise UserError(
            f"--size {size} is not divisible by 2**num_layers = {2**cfg.model.num_layers} of "
            f"the model in {workdir} (num_layers={cfg.model.num_layers})"
        )
    mesh = sharding.make_mesh(jax.local_devices())
    sharding.check_batch_size(batch_size, mesh)
    replicated, batched = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    variables = jax.device_put(variables, replicated)
    lpips_params = jax.device_put(lpips.load_params(lpips_net), replicated)

    def predict_and_score(variables, lpips_params, truth_u8, mask):
        truth = truth_u8.astype(jnp.float32) / 255.0
        # The model sees only the known pixels, whatever it does with the holes.
        output = model.apply(variables, truth * mask, mask)
        return score(lpips_params, truth_u8, mask, output, lpips_net=lpips_net)

    step_fn = jax.jit(
        predict_and_score,
        in_shardings=(replicated, replicated, batched, batched),
        out_shardings=batched,
    )

    def run_batch(pairs, truth_u8, mask):
        # Placed on this process's devices first: jit refuses numpy inputs with a non-trivial
        # sharding in a multi-process run, even over local devices.
        inputs = [jax.device_put(x, batched) for x in pad_to(batch_size, truth_u8, mask)]
        return _trim(step_fn(variables, lpips_params, *inputs), len(truth_u8))

    kind = "PConv" if cfg.model.partial else "Conv baseline"
    description = (
        f"{kind} U-Net, {cfg.model.num_layers} layers, {workdir} step {step}, "
        f"on {jax.devices()[0].platform}"  # device and process counts: table.json's timing
    )
    return run_batch, step, description


def _fill_runner(fill_batch, batch_size: int, lpips_net: str, composite: bool = True):
    """A runner from `fill_batch(pairs, truth_u8, mask) -> uint8 [n, S, S, 3]` (CPU fills)."""
    score_fn = jax.jit(functools.partial(score, composite=composite, lpips_net=lpips_net))
    lpips_params = jax.device_put(lpips.load_params(lpips_net))

    def run_batch(pairs, truth_u8, mask):
        filled = fill_batch(pairs, truth_u8, mask)
        padded = pad_to(batch_size, truth_u8, mask, filled.astype(np.float32) / 255.0)
        return _trim(score_fn(lpips_params, *padded), len(truth_u8))

    return run_batch


def baseline_runner(name: str, batch_size: int, pool, lpips_net: str = "alex"):
    """A runner for a classical baseline; the pairs of a batch are filled in `pool`'s threads.

    Returns:
      (run_batch, a description for the table's notes).
    """
    fill = baselines.get_baseline(name)

    def fill_batch(pairs, truth_u8, mask):
        holed = truth_u8 * mask.astype(np.uint8)  # the baseline never sees the hole's content
        return np.stack(list(pool.map(fill, holed, mask)))

    run_batch = _fill_runner(fill_batch, batch_size, lpips_net)
    return run_batch, f"classical baseline {name} (pconv_jax.eval.baselines, CPU)"


def check_predictions(folder: pathlib.Path, names: list[str], size: int) -> None:
    """One UserError naming the missing, extra and wrongly sized fills of `folder`, if any:
    it must hold exactly NAME.png for each of `names`, each size x size."""
    if not folder.is_dir():
        raise UserError(f"--predictions folder not found: {folder}")
    found = {p.stem: p for p in folder.iterdir() if p.is_file()}
    wanted = set(names)
    missing = sorted(wanted - set(found))
    extra = sorted(p.name for stem, p in found.items() if stem not in wanted)
    extra += sorted(p.name for stem, p in found.items() if stem in wanted and p.suffix != ".png")
    wrong = []
    for name in sorted(wanted & set(found)):
        with Image.open(found[name]) as im:
            if im.size != (size, size):
                wrong.append(f"{name}.png is {im.size[0]}x{im.size[1]}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_first(n + '.png' for n in missing)})")
    if extra:
        problems.append(f"{len(extra)} extra ({_first(extra)})")
    if wrong:
        problems.append(f"{len(wrong)} not {size}x{size} ({_first(wrong)})")
    if problems:
        raise UserError(
            f"{folder} must hold one {size}x{size} PNG per exported pair, NAME.png: "
            + "; ".join(problems)
        )


def _first(items, shown: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:shown]) + (", ..." if len(items) > shown else "")


def predictions_runner(
    folder: str, batch_size: int, pool, lpips_net: str = "alex", composite: bool = True
):
    """A runner reading each pair's fill from folder/NAME.png (NAME: the pair index, 6 digits),
    RGB; checked beforehand with `check_predictions`.

    Returns:
      (run_batch, a description for the table's notes).
    """
    root = pathlib.Path(folder)

    def read(pair):
        return images.read_image(root / f"{pair.index:06d}.png")

    def fill_batch(pairs, truth_u8, mask):
        return np.stack(list(pool.map(read, pairs)))

    run_batch = _fill_runner(fill_batch, batch_size, lpips_net, composite)
    known = "composited" if composite else "raw"
    return run_batch, f"fills read from {root.resolve()} (scored {known})"


def prefetched_batches(pending: list, batch_size: int, load, pool):
    """Yields (pairs, truth_u8 [n, S, S, 3], mask [n, S, S, 1]) while the next batch loads."""
    chunks = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
    ahead = [pool.submit(load, p) for p in chunks[0]] if chunks else []
    for n, chunk in enumerate(chunks):
        current = ahead
        if n + 1 < len(chunks):
            ahead = [pool.submit(load, p) for p in chunks[n + 1]]
        loaded = [future.result() for future in current]
        yield chunk, np.stack([t for t, _ in loaded]), np.stack([m for _, m in loaded])


def finite_or_none(value) -> float | None:
    """JSON-safe float: NaN (hole-only l1 of a pair without hole) becomes None."""
    value = float(value)
    return value if np.isfinite(value) else None


def load_fid_params(path: str | None):
    """FID Inception weights as device arrays (moved once, not per batch), or None."""
    if not path:
        return None
    return jax.tree.map(jnp.asarray, inception.load_fid_inception(path))


def save_extras(
    out: pathlib.Path, chunk, output, composite, truth, examples, fid_params, batch_size: int
):
    """Writes the outputs of example pairs (PNG) and, with FID weights, each pair's Inception
    features [2, 2048] (composite, truth) as fid/<pair>.npy. Done before the pair's result line,
    so a finished pair always has its side files."""
    for j, pair in enumerate(chunk):
        if pair.index in examples:
            images.save_png(output[j], out / "examples" / f"{pair.index:06d}.png")
    if fid_params is None:
        return
    # Padded to the full batch: one shape, so the Inception network compiles once.
    comp, real = pad_to(batch_size, composite, truth)
    features = fid.fid_features(fid_params, np.concatenate([comp, real]), 2 * batch_size)
    if not np.isfinite(features).all():
        raise UserError("the FID Inception features are not finite: broken --fid-weights?")
    for j, pair in enumerate(chunk):
        with atomic.replacing(out / "fid" / f"{pair.index:06d}.npy") as temporary:
            np.save(temporary, features[[j, batch_size + j]])


class Progress:
    """A tqdm bar over pairs (on a terminal) and this run's timing; the first batch includes
    the compilation, so the per-pair time is measured after it."""

    def __init__(self, total: int, done: int):
        self.bar = tqdm(total=total, initial=done, unit="pair", dynamic_ncols=True, disable=None)
        self.start = time.perf_counter()
        self.first_batch_s: float | None = None
        self.first_pairs = 0
        self.pairs = 0

    def update(self, pairs: int) -> None:
        if self.first_batch_s is None:
            self.first_batch_s, self.first_pairs = time.perf_counter() - self.start, pairs
        self.pairs += pairs
        self.bar.update(pairs)

    def summary(self) -> dict:
        self.bar.close()
        elapsed = time.perf_counter() - self.start
        later = self.pairs - self.first_pairs
        return {
            "pairs_computed": self.pairs,
            "seconds": elapsed,
            "first_batch_seconds": self.first_batch_s,
            "seconds_per_pair_after_first_batch": (
                (elapsed - self.first_batch_s) / later
                if later and self.first_batch_s is not None
                else None
            ),
        }


def write_example_grids(out: pathlib.Path, examples: dict, load, grouping) -> None:
    """examples_{tag}.png per pooled column (paper: examples_bucket{b}.png, LaMa: examples_area{i}
    .png): rows = example pairs; columns = input with holes in white, output, composite (as
    scored), ground truth."""
    for column, pairs in examples.items():
        loaded = [load(p) for p in pairs]
        truth = np.stack([t for t, _ in loaded]).astype(np.float32) / 255.0
        mask = np.stack([m for _, m in loaded])
        output = np.stack(
            [np.asarray(Image.open(out / "examples" / f"{p.index:06d}.png")) for p in pairs]
        ).astype(np.float32)
        output /= 255.0
        shown = truth * mask + (1.0 - mask)
        composite = truth * mask + output * (1.0 - mask)
        grid = images.image_grid([shown, output, composite, truth])
        images.save_png(grid, out / f"examples_{grouping.tags[column]}.png")
