"""strategy='downscale' computes what the README says, value by value: area-downscale so the
longer side is the training size (a pixel known only if its whole footprint is), run the network
there, composite at low resolution, bicubic upsample, and use the result only in the holes."""

import numpy as np
from PIL import Image

from pconv_jax import Inpainter


def _image_and_known(height, width):
    yy, xx = np.mgrid[:height, :width]
    image = np.stack(
        [np.sin(xx / 9 + c) * 0.4 + 0.5 + 0.1 * np.cos(yy / 7) for c in range(3)], -1
    ).astype(np.float32)
    known = np.ones((height, width), bool)
    known[height // 4 : height // 2, width // 5 : width // 2] = False
    known[100:112, 50:67] = False
    return image, known


def test_downscale_strategy_values(run_dir):
    inpainter = Inpainter.load(run_dir)
    assert inpainter.train_size == 32
    image, known = _image_and_known(160, 80)
    got = inpainter(image, known, strategy="downscale")

    # Independent downscale: 160x80 -> 32x16 is an exact factor 5, so each low-resolution pixel
    # is the mean of a 5x5 block (numpy), known only when all 25 are known.
    def blocks(a):
        return a.reshape(32, 5, 16, 5, *a.shape[2:])

    small_known = blocks(known).all(axis=(1, 3))
    small = np.where(small_known[..., None], blocks(image).mean(axis=(1, 3)), 0.0)
    assert small_known.mean() < known.mean(), "partly-known footprints count as holes"

    # The network at that size (strategy 'full' on the small image: no downscaling there), the
    # low-resolution composite, PIL's bicubic upsampling per channel.
    net = inpainter(small.astype(np.float32), small_known, strategy="full", composite=False)
    low = np.where(small_known[..., None], small, net)
    up = np.stack(
        [
            np.asarray(
                Image.fromarray(low[..., c].astype(np.float32)).resize(
                    (80, 160), Image.Resampling.BICUBIC
                )
            )
            for c in range(3)
        ],
        axis=-1,
    )
    expected = np.where(known[..., None], image, np.clip(up, 0.0, 1.0))

    np.testing.assert_array_equal(got[known], image[known])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Not the full-resolution fill: the hole values really come from the 32x16 run.
    full = inpainter(image, known, strategy="full")
    assert np.abs(full - got)[~known].max() > 1e-2
