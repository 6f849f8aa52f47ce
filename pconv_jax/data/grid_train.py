"""Training samples of gridded fields (`data.source=grids`): anomalies under coverage masks.

Fields. Each file of `data.grid_files` (for example one member of a climate model's ensemble)
holds complete fields of `data.grid_var`; it is read whole (110 annual 64x128 fields are 3.6 MB)
and turned into anomalies against its own per-cell time mean, the convention of the gridded
evaluation (`pconv evaluate --grid`, eval/grid_evaluate.py). Anomalies keep the variable's units
(K for temperature); no further scaling (their spread is O(1 K)).

Masks. A sample's coverage is, with probability `data.grid_station_share`, one of
`data.grid_station_patterns` station-network patterns (masks/stations.py) drawn once per run
(seeded by the run's seed) with observed fractions spread evenly over
`data.grid_station_fraction`; otherwise one of the patterns of `data.grid_coverage_files`: the
time steps of coverage files (observational coverage such as HadCRUT4's), regridded by the
nearest cell on the sphere (masks/coverage.py), or fixed generated networks ("stations:0.3",
`pconv evaluate`'s specs and seed, `data.grid_coverage_seed`). 1 = observed, 0 = missing, the
same for every channel.

Mixing. With probability `data.grid_mix_share` the sample's field a is replaced by
cos(t) a + sin(t) b, b a training field drawn at random and t uniform in [0, 2 pi): if the
fields are independent draws of one zero-mean Gaussian process (the assumption kriging makes),
the mix is another draw of it, with the same covariance. Without it a network of 0.7 M
parameters learns the 440 training fields by heart within a few thousand steps (validation RMSE
rising while the training loss falls, experiments/results/ccsm_t42_2026-12-08/).

The stream. Global position pos = step * G + row (G the global batch), as for images: epoch
e = pos // N over the N fields, field = perm_e[pos % N] with perm_e seeded by (seed, e), and the
mask drawn from a generator seeded by (seed, pos). So a batch is a pure function of (config,
seed, step) whatever the process count, and a resumed run continues bit for bit.

Batches: `image` float32 [B, H, W, C] (the anomalies: the truth), `mask` float32 [B, H, W, 1],
`skipped` () (nothing is unreadable once the files are read).
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
import threading

import numpy as np

from pconv_jax.config import DataConfig
from pconv_jax.data import grids
from pconv_jax.errors import UserError

PERMUTATION, MASK, STATIONS, MIX = 0, 2, 3, 4  # purposes mixed into the seeds (as data/examples.py)


@dataclasses.dataclass(frozen=True)
class GridFields:
    """Anomaly fields of one or more files on one grid.

    Attributes:
      values: float32 [N, H, W, C], anomalies (the variable's units) of every time step of every
        file, file after file.
      lat, lon: [H], [W] cell centres in degrees.
      sources: (file name, time steps) per file, in order.
      names: the variables read (one channel each); units: the first variable's `units`
        attribute (every file holds the same variables on the same grid).
    """

    values: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    sources: tuple[tuple[str, int], ...]
    names: tuple[str, ...]
    units: str


def read_anomalies(paths: tuple[str, ...] | list[str], var: str) -> GridFields:
    """Every time step of `var` in each file, as anomalies against that file's per-cell mean.

    Raises:
      UserError: no file, a missing variable (grids.select_grid), a field with missing values
        (training needs complete fields), or files on different grids.
    """
    if not paths:
        raise UserError("data.source=grids needs data.grid_files (complete fields to train on)")
    parts, sources, grid = [], [], None
    for path in paths:
        dataset = grids.open_grid(path)
        try:
            layout = grids.select_grid(dataset, (var,) if var else (), str(path))
            values = grids.read_values(dataset, layout, 0, layout.num_samples)
            file_lat = np.asarray(dataset[layout.grid_dims[0]].values, np.float64)
            file_lon = np.asarray(dataset[layout.grid_dims[1]].values, np.float64)
            units = str(dataset[layout.names[0]].attrs.get("units", ""))
        finally:
            dataset.close()
        if not np.isfinite(values).all():
            raise UserError(
                f"{path}: {var or 'the variable'} has missing values; training and "
                "validation need complete fields (the truth of every masked cell)"
            )
        if grid is None:
            grid = (file_lat, file_lon)
        elif not (np.array_equal(grid[0], file_lat) and np.array_equal(grid[1], file_lon)):
            raise UserError(f"{path}: its grid differs from {paths[0]}'s")
        parts.append((values - values.mean(axis=0, keepdims=True)).astype(np.float32))
        sources.append((str(path), int(values.shape[0])))
    assert grid is not None
    return GridFields(np.concatenate(parts), grid[0], grid[1], tuple(sources), layout.names, units)


def grid_card(cfg: DataConfig) -> dict:
    """What a gridded run was trained on, for its export's model card (`grid`): the variables,
    the grid's lat/lon (degrees), the units and the std of the training anomalies, which
    `pconv infill` checks a file against (inference/grid_files.check_trained_grid)."""
    fields = read_anomalies(cfg.grid_files, cfg.grid_var)
    return {
        "variables": list(fields.names),
        "lat": [float(v) for v in fields.lat],
        "lon": [float(v) for v in fields.lon],
        "units": fields.units,
        "values": "anomalies against each training file's own per-cell time mean",
        "anomaly_std": float(np.std(fields.values)),
        "training_files": [pathlib.Path(name).name for name, _ in fields.sources],
    }


def coverage_patterns(cfg: DataConfig, lat: np.ndarray, lon: np.ndarray) -> dict[str, np.ndarray]:
    """{name: float32 [H, W]} every distinct pattern of `data.grid_coverage_files` on the grid:
    each time step of a coverage file, or a generated network ("stations:0.3", seeded by
    `data.grid_coverage_seed`: the pattern `pconv evaluate --coverage stations:0.3 --seed` draws
    with the same seed); see masks.coverage.from_specs. Names as metric keys take them
    (characters other than letters, digits, _ . - become _)."""
    from pconv_jax.masks import coverage  # xarray and scipy: only for gridded runs

    patterns: dict[str, np.ndarray] = {}
    specs = cfg.grid_coverage_files
    for name, pattern in coverage.from_specs(specs, lat, lon, cfg.grid_coverage_seed).items():
        # Two files may hold the same pattern (CRAI's missmask is its 1877-09 coverage):
        # kept once, so that no pattern weighs double.
        if not any(np.array_equal(pattern, kept) for kept in patterns.values()):
            patterns[re.sub(r"[^A-Za-z0-9_.-]", "_", name)] = pattern
    return patterns


def station_patterns(cfg: DataConfig, lat: np.ndarray, lon: np.ndarray, seed: int) -> np.ndarray:
    """float32 [S, H, W]: `data.grid_station_patterns` station networks, observed fractions
    evenly spaced over `data.grid_station_fraction`, each seeded by (seed, its index)."""
    from pconv_jax.masks import stations

    count = cfg.grid_station_patterns if cfg.grid_station_share > 0 else 0
    low, high = cfg.grid_station_fraction
    fractions = np.linspace(low, high, count)
    patterns = [
        stations.station_coverage(
            lat,
            lon,
            float(f),
            seed=int(np.random.SeedSequence([seed, i, STATIONS]).generate_state(1)[0]),
        )
        for i, f in enumerate(fractions)
    ]
    return np.stack(patterns) if patterns else np.zeros((0, len(lat), len(lon)), np.float32)


def validate(cfg: DataConfig) -> None:
    """Raises UserError naming the first bad data.grid_* field."""
    if not cfg.grid_files:
        raise UserError("data.source=grids needs data.grid_files")
    if not 0.0 <= cfg.grid_station_share <= 1.0:
        raise UserError(f"data.grid_station_share must lie in [0, 1], got {cfg.grid_station_share}")
    if not 0.0 <= cfg.grid_mix_share <= 1.0:
        raise UserError(f"data.grid_mix_share must lie in [0, 1], got {cfg.grid_mix_share}")
    low, high = cfg.grid_station_fraction
    if not 0.0 < low <= high < 1.0:
        raise UserError(
            f"data.grid_station_fraction must satisfy 0 < min <= max < 1, got {(low, high)}"
        )
    if cfg.grid_station_share > 0 and cfg.grid_station_patterns < 1:
        raise UserError("data.grid_station_share > 0 needs data.grid_station_patterns >= 1")
    if cfg.grid_station_share < 1 and not cfg.grid_coverage_files:
        raise UserError(
            "data.grid_station_share < 1 draws coverage patterns: give data.grid_coverage_files"
        )


class GridExampleMaker:
    """grain's map function for gridded samples (picklable; see the module docstring).

    Args:
      fields: float32 [N, H, W, C] anomalies.
      coverage: float32 [P, H, W] observational patterns (P may be 0 when share is 1).
      stations: float32 [S, H, W] station patterns (S may be 0 when share is 0).
      station_share: probability of a station pattern.
      mix_share: probability that the field is mixed with another (module docstring).
      seed, local_batch, global_batch, first_row: as data/examples.ExampleMaker.
    """

    def __init__(
        self,
        fields,
        coverage,
        stations,
        station_share,
        seed,
        local_batch=1,
        global_batch=1,
        first_row=0,
        mix_share=0.0,
    ):
        self.fields, self.coverage, self.stations = fields, coverage, stations
        self.station_share, self.mix_share = station_share, mix_share
        self.seed, self.local_batch = seed, local_batch
        self.global_batch, self.first_row = global_batch, first_row
        self._init_caches()

    def _init_caches(self) -> None:
        self._lock = threading.Lock()
        self._permutations: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def __getstate__(self) -> dict:  # a lock does not pickle
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_permutations")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def __call__(self, index: int) -> dict[str, np.ndarray]:
        step, row = divmod(index, self.local_batch)
        return self.make(step * self.global_batch + self.first_row + row)

    def make(self, position: int) -> dict[str, np.ndarray]:
        """{'image': [H, W, C], 'mask': [H, W, 1]} at global stream position `position`."""
        epoch, offset = divmod(position, len(self.fields))
        field = self.fields[int(self._permutation(epoch)[offset])]
        rng = np.random.default_rng([self.seed, position, MASK])
        use_station = len(self.stations) and (
            not len(self.coverage) or rng.random() < self.station_share
        )
        bank = self.stations if use_station else self.coverage
        mask = bank[int(rng.integers(len(bank)))][..., None]
        if self.mix_share:
            field = self._mixed(field, position)
        return {"image": field, "mask": mask}

    def _mixed(self, field: np.ndarray, position: int) -> np.ndarray:
        """`field`, or with probability mix_share cos(t) field + sin(t) other (module docstring),
        drawn from its own generator seeded by (seed, position)."""
        mixing = np.random.default_rng([self.seed, position, MIX])
        if mixing.random() >= self.mix_share:
            return field
        other = self.fields[int(mixing.integers(len(self.fields)))]
        angle = mixing.uniform(0.0, 2.0 * np.pi)
        return (np.cos(angle) * field + np.sin(angle) * other).astype(np.float32)

    def _permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch not in self._permutations:
                rng = np.random.default_rng([self.seed, epoch, PERMUTATION])
                self._permutations[epoch] = rng.permutation(len(self.fields))
                while len(self._permutations) > 3:
                    self._permutations.popitem(last=False)
            return self._permutations[epoch]


def stack_examples(examples: list[dict[str, np.ndarray]]) -> dict:
    """grain batch_fn: `image` [B, H, W, C], `mask` [B, H, W, 1] float32, `skipped` ()."""
    return {
        "image": np.stack([e["image"] for e in examples]),
        "mask": np.stack([e["mask"] for e in examples]),
        "skipped": (),
    }


def make_example_maker(
    cfg: DataConfig, seed: int, local_batch: int, global_batch: int, first_row: int
) -> GridExampleMaker:
    """The maker of this process's rows: reads the files and draws the mask banks."""
    validate(cfg)
    fields = read_anomalies(cfg.grid_files, cfg.grid_var)
    coverage = coverage_patterns(cfg, fields.lat, fields.lon)
    coverage_bank = np.stack(list(coverage.values())) if coverage else np.zeros((0, 1, 1))
    stations = station_patterns(cfg, fields.lat, fields.lon, seed)
    return GridExampleMaker(
        fields.values,
        coverage_bank.astype(np.float32),
        stations,
        cfg.grid_station_share,
        seed,
        local_batch,
        global_batch,
        first_row,
        cfg.grid_mix_share,
    )
