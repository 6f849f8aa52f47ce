"""A seconds-long CPU configuration for tests and CI: 32x32 crops, a 4-level U-Net.

    pconv train --config experiments/configs/tiny.py --workdir /tmp/tiny --set data.dir=IMAGES

Not a model anyone should use: it checks that the whole training path runs.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="tiny",
        model=ModelConfig(num_layers=4),
        data=DataConfig(source="folder", image_size=32, num_workers=1, prefetch=1),
        train=TrainConfig(
            num_steps=6,
            batch_size_per_device=1,
            ckpt_every=2,
            keep_last=10,
            log_every=2,
            sample_every=3,
        ),
    )
