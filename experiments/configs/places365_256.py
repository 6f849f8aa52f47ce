"""Places365 at 256x256 from tfds `places365_small` (the 256 px release), 7-layer U-Net, stage 1.

The closest tfds-only substitute for the paper's Places2 512 runs (tfds has no high-resolution
Places); this is the resolution naoto0804's and mmagic's PyTorch ports train at.

    pconv train --config experiments/configs/places365_256.py --workdir runs/places365_256

Machine: one GPU. mmagic's PConv at 256 (500k steps, free-form masks) reports hole-only l1 8.78,
PSNR 22.76, SSIM 0.801 on Places365-val (different masks and metric definitions from Table 1).
Not run in this repository.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="places365_256",
        model=ModelConfig(num_layers=7),
        data=DataConfig(source="tfds", tfds_name="places365_small", image_size=256),
        train=TrainConfig(
            num_steps=500_000,
            batch_size_per_device=6,
            learning_rate=2e-4,
            ckpt_every=5000,
            eval_every=5000,  # validation: the first 500 images of data.eval_split
            eval_num_images=500,
            keep_every=100_000,
            log_every=100,
            sample_every=2000,
        ),
    )
