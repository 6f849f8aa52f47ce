"""2 m temperature of a climate model's 20th century (T42, 64x128, global), infilled under
observational coverage: the gridded model trained on the CPU (issue: a model that beats classical
infilling).

    pconv train --config experiments/configs/ccsm_trefht.py --workdir runs/ccsm_trefht

Data (../shared/data/climate/, see its README): six members of NCAR CCSM's 20th-century run,
annual means 1890-1999, variable TREFHT (K). Training: members B06.57, .59, .60 and .61 (440
fields); validation (the best step): member B06.66; B06.67 is the test member, never read here.
Every member becomes anomalies against its own per-cell 1890-1999 mean (data/grid_train.py), the
convention of `pconv evaluate --grid`; the network infills anomalies in K, with no further
scaling.

Masks, drawn per sample: three quarters take one of five fixed patterns, HadCRUT4's two
coverages in crai/ (the missmask file is the 1877-09 step of the other file; regridded to T42 by
the nearest cell on the sphere) and the station networks that `pconv evaluate --coverage
stations:0.1` (0.2, 0.3) draws with seed 0: the model is trained for these observing networks,
as Kadow et al. train for HadCRUT4's. The other quarter take one of 256 random station networks
observing 10-90 % of the cells (masks/stations.py). Fields: 80 % of the samples are
cos(t) a + sin(t) b mixes of two training fields (data.grid_mix_share; without them the network
learns the 440 fields by heart within ~1,500 steps).

Model: a CRAI-style partial-convolution U-Net for one channel: 5 levels, widths 24, 48, 96, 96,
96 (kernels 7, 5, 5, 3, 3), global padding (circular in longitude), any grid size, the paper's
mask ratio and leaky slope; 0.72 M parameters. Loss: the paper's valid + 6 x hole L1 terms
(no VGG terms: they are defined for RGB photos). Adam 1e-3 with warm-up and cosine decay,
12,000 steps of 16: 29 min on 2 idle CPU cores
(experiments/results/ccsm_t42_2026-12-08/README.md). The shipped model `ccsm-t42` is this
run's best validation step.
Set PCONV_SHARED to where shared/ lives if it is not beside the project.
"""

import os
import pathlib

from pconv_jax.config import Config, DataConfig, LossConfig, ModelConfig, TrainConfig

SHARED = pathlib.Path(
    os.environ.get("PCONV_SHARED", pathlib.Path(__file__).resolve().parents[2].parent / "shared")
)
CLIMATE = SHARED / "data" / "climate"
MEMBERS = {m: str(CLIMATE / "ccsm_trefht" / f"TREFHT.B06.{m}.atm.1890-1999ANN.nc")
           for m in ("57", "59", "60", "61", "66", "67")}  # fmt: skip
COVERAGE = (
    str(CLIMATE / "crai" / "hadcrut_missmask_1.nc"),
    str(CLIMATE / "crai" / "tas_hadcrut_187709_189308.nc"),
    # three fixed station networks, `pconv evaluate --coverage stations:F --seed 0`'s patterns
    "stations:0.1",
    "stations:0.2",
    "stations:0.3",
)


def get_config() -> Config:
    return Config(
        name="ccsm_trefht",
        model=ModelConfig(
            num_layers=5,
            in_channels=1,
            out_channels=1,
            width=24,
            max_width=96,
            padding="global",
            input_sizes="any",
        ),
        loss=LossConfig(valid=1.0, hole=6.0, perceptual=0.0, style=0.0, tv=0.0),
        data=DataConfig(
            source="grids",
            grid_files=tuple(MEMBERS[m] for m in ("57", "59", "60", "61")),
            grid_var="TREFHT",
            grid_eval_files=(MEMBERS["66"],),
            grid_coverage_files=COVERAGE,
            grid_station_share=0.25,
            grid_mix_share=0.8,
            num_workers=0,  # a sample is an array lookup: no worker processes
        ),
        train=TrainConfig(
            num_steps=12000,
            batch_size_per_device=16,
            learning_rate=1e-3,
            lr_schedule="cosine",
            warmup_steps=200,
            ckpt_every=500,
            log_every=100,
            sample_every=2000,
            eval_every=500,
            eval_best_metric="rmse",
        ),
    )
