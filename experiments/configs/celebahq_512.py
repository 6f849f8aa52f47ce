"""CelebA-HQ at 512x512 (tfds `celeb_a_hq/512`), stage 1; fine-tune with stage-2 settings after.

tfds needs the progressive-GAN tarballs downloaded by hand and prepared once
(`tfds build celeb_a_hq/512 --manual_dir ...`, which needs TensorFlow on the preparing machine);
training itself reads it through `tfds.data_source`, without TensorFlow:

    pconv train --config experiments/configs/celebahq_512.py --workdir runs/celebahq_512 \
        --set data.tfds_data_dir=/data/tensorflow_datasets

Then fine-tune:  --set train.init_from=runs/celebahq_512 --set train.learning_rate=5e-5
--set train.freeze_encoder_bn_stats=true --set train.freeze_encoder_bn_params=true (new workdir).
Machine: paper, one V100, 3 days. The paper reports CelebA-HQ only qualitatively (Fig. 8); no
numbers to expect. Not run in this repository. The paper partitions 27K train / 3K test images:
tfds has one `train` split of 30K, so `train[:27000]` / `train[27000:]` reproduce that partition.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="celebahq_512",
        model=ModelConfig(num_layers=8),
        data=DataConfig(
            source="tfds",
            tfds_name="celeb_a_hq/512",
            train_split="train[:27000]",
            eval_split="train[27000:]",
            image_size=512,
        ),
        train=TrainConfig(
            num_steps=300_000,
            batch_size_per_device=6,
            learning_rate=2e-4,
            ckpt_every=5000,
            eval_every=5000,  # validation: the first 200 images of data.eval_split
            eval_num_images=200,
            keep_every=50_000,
            log_every=100,
            sample_every=2000,
        ),
    )
