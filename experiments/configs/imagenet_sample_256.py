"""The small real run behind experiments/README.md: the shared ImageNet photos, 256x256, one GPU.

700 of the 800 photos in ../shared/data/imagenet_sample (every 8th file by name is held out for
evaluation; experiments/pack_gpu_data.py writes both halves), random 256 crops and flips, masks
from the on-the-fly irregular-mask generator (never the NVIDIA test masks), the 7-layer U-Net,
stage-1 settings (Adam 2e-4, BN on), bfloat16 compute, stopped by wall time:

    python experiments/pack_gpu_data.py ../shared .gpu_data
    pconv train --config experiments/configs/imagenet_sample_256.py --workdir runs/pconv_in256 \
        --set train.max_seconds=300

Machine: one H100 (lent), ~5 minutes of training. Expected: far from the paper's Table 1 (which
took 10+1 days on a V100); see experiments/README.md for what it reached.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="imagenet_sample_256",
        model=ModelConfig(num_layers=7),
        data=DataConfig(
            source="folder",
            dir=".gpu_data/imagenet_train",
            image_size=256,
            masks="generate",
            num_workers=14,  # 16 cores: 14 grain worker processes + the trainer
            prefetch=6,
        ),
        train=TrainConfig(
            num_steps=100_000,  # an upper bound: train.max_seconds ends the run
            batch_size_per_device=32,
            learning_rate=2e-4,
            compute_dtype="bfloat16",
            ckpt_every=1000,
            eval_every=1000,  # validation: the 100 held-out photos, one fixed mask each
            eval_images=".gpu_data/imagenet_eval",
            eval_num_images=100,
            keep_last=2,
            log_every=100,
            sample_every=1000,
            max_seconds=300.0,
        ),
    )
