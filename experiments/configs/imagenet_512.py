"""ImageNet (tfds `imagenet2012`) at 512x512, stage 1 (paper: the Inception-Score row of Table 1).

tfds needs ILSVRC2012_img_train.tar / _val.tar placed in its manual dir and prepared once:

    pconv train --config experiments/configs/imagenet_512.py --workdir runs/imagenet_512 \
        --set data.tfds_data_dir=/data/tensorflow_datasets

Only ~5% of ImageNet photos have a short side >= 512: the train pipeline upsamples the short side
to 512 before cropping. Machine: paper, one V100, 10 days (+1 day fine-tuning with stage-2
settings). Expected: paper Table 1 IScore PConv row 0.051/0.032 (1-10%) ... 3.603/1.588 (50-60%).
Not run in this repository (see imagenet_sample_256.py for the small run we did on real photos).
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="imagenet_512",
        model=ModelConfig(num_layers=8),
        data=DataConfig(
            source="tfds",
            tfds_name="imagenet2012",
            train_split="train",
            eval_split="validation",
            image_size=512,
        ),
        train=TrainConfig(
            num_steps=1_000_000,
            batch_size_per_device=6,
            learning_rate=2e-4,
            ckpt_every=5000,
            eval_every=5000,  # validation: the first 200 images of data.eval_split
            eval_num_images=200,
            keep_every=100_000,
            log_every=100,
            sample_every=2000,
        ),
    )
