"""Places2 at 512x512, stage 2 of the paper: fine-tuning with the encoder's BN frozen, lr 5e-5.

Starts from the stage-1 run's params and BN statistics (not its optimizer state):

    pconv train --config experiments/configs/places2_512_stage2.py \
        --workdir runs/places2_512_stage2 --set data.dir=/data/places2/data_large \
        --set train.init_from=runs/places2_512_stage1

Machine: paper, one V100, "all fine-tuning is performed in one day". Expected numbers: the paper's
Table 1 PConv row (see places2_512_stage1.py). Not run in this repository.
"""

import dataclasses

from places2_512_stage1 import get_config as stage1_config

from pconv_jax.config import Config


def get_config() -> Config:
    base = stage1_config()
    return dataclasses.replace(
        base,
        name="places2_512_stage2",
        train=dataclasses.replace(
            base.train,
            num_steps=200_000,
            learning_rate=5e-5,
            freeze_encoder_bn_stats=True,  # encoder BN uses its stage-1 running statistics
            freeze_encoder_bn_params=True,  # and its scale/bias get no updates
            init_from="runs/places2_512_stage1",
        ),
    )
