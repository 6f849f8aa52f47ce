"""Super-resolution (paper Sec. 5.2): the 7-layer U-Net on x2 and x4 canvases of 256 px crops.

Each training example is a random 256x256 crop (random flip), box-downsampled by a factor drawn
from data.sr_factors and spread onto a 256x256 canvas with the low-res pixels at offset
(K//2, K//2) of their KxK cells and holes elsewhere (pconv_jax/data/sr_canvas.py); the target
is the crop itself, the loss the inpainting loss of Eq. 7. Meant for the 800 shared ImageNet photos
(../shared/data/imagenet_sample; ~90% have a short side >= 256, smaller ones are upsampled):

    pconv train --config experiments/configs/superres_256.py --workdir runs/superres_256 \
        --set data.dir=../shared/data/imagenet_sample --set train.max_seconds=480
    python experiments/eval_superres.py --checkpoint runs/superres_256 --factors 2 4 \
        --images ../shared/data/kodak --out runs/superres_256/kodak_sr.md
    pconv upscale --checkpoint runs/superres_256 --factor 4 small.png -o large.png

Re-running the train command resumes from the last checkpoint, so a budget can be spent in
several sittings of train.max_seconds each (the run stops cleanly, with a checkpoint).
Machine: one lent H100 (16 CPU cores: 8 loader processes), float32, batch 6 as the paper.

Expected numbers (Kodak, 24 centre crops 512x512, 8-bit box-downsampled low-res, PSNR/SSIM on
RGB over the whole image): bicubic x2 28.95 dB / 0.8596, x4 25.16 dB / 0.6889 (measured on the
2-core CPU machine; deterministic, and equal to scikit-image's metrics on the same images).
The model's numbers depend on the training budget actually spent (report its step count with
them): the paper shows super-resolution only qualitatively (Fig. 12-13, x4, against SRGAN and
MDSR+), so there is no published number to reach, and 800 photos with minutes of training are
far below any super-resolution training set. Not run yet in this repository.
"""

from pconv_jax.config import Config, DataConfig, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(
        name="superres_256",
        model=ModelConfig(num_layers=7),
        data=DataConfig(
            source="folder",
            image_size=256,
            task="superres",
            sr_factors=(2, 4),
            num_workers=8,
            prefetch=4,
        ),
        train=TrainConfig(
            num_steps=100_000,
            batch_size_per_device=6,
            learning_rate=2e-4,
            ckpt_every=1000,
            keep_last=3,
            log_every=100,
            sample_every=1000,
        ),
    )
