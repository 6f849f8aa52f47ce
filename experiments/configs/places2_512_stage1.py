"""Places2 at 512x512, stage 1 of the paper (Sec. 4.2): BN on everywhere, Adam lr 2e-4.

Command (one GPU; add --set data.dir=... for the Places2 "data_large" high-resolution images, which
tfds does not provide: its `places365_small` is 256x256 only):

    pconv train --config experiments/configs/places2_512_stage1.py \
        --workdir runs/places2_512_stage1 --set data.dir=/data/places2/data_large \
        --set train.eval_images=/data/places2/val_large

Machine: the paper used one V100 16 GB, batch 6, ~10 days for stage 1. Not run in this repository
(no Places2 copy here). Expected after stage 2 (places2_512_stage2.py), paper Table 1, PConv row,
N/B columns, l1 %: 0.49/0.47 (1-10% holes) ... 6.45/5.72 (50-60%); PSNR 33.75/34.34 ... 18.21/19.04;
SSIM 0.946/0.945 ... 0.468/0.484.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="places2_512_stage1",
        model=ModelConfig(num_layers=8),
        data=DataConfig(source="folder", image_size=512, masks="generate"),
        train=TrainConfig(
            num_steps=1_000_000,  # ~10 days at the paper's pace; stop earlier as budget allows
            batch_size_per_device=6,
            learning_rate=2e-4,
            ckpt_every=5000,
            eval_every=5000,  # validation; set train.eval_images to a held-out folder
            eval_num_images=200,
            keep_last=3,
            keep_every=100_000,
            log_every=100,
            sample_every=2000,
        ),
    )
