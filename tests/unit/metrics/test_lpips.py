"""LPIPS (pconv_jax.metrics.lpips) against an independent PyTorch computation (torch_ref/lpips.py)
of the same formula from the same weights, on real photos (Kodak)."""

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_jax.metrics import lpips

import tolerances
from conftest import shared_path
from torch_ref.lpips import LPIPSTorch

# The reduction lengths (kernel height x width x input channels) of each net's convolutions up to
# the last LPIPS layer: AlexNet conv1..conv5, VGG16 conv1_1..conv5_3.
CONV_REDUCTIONS = {
    "alex": [11 * 11 * 3, 5 * 5 * 64, 3 * 3 * 192, 3 * 3 * 384, 3 * 3 * 256],
    "vgg": [3 * 3 * c for c in (3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512)],
}
WIDEST = {"alex": 384, "vgg": 512}  # channels of the widest LPIPS layer


def lpips_rtol(net: str, side: int, one_sided: bool) -> float:
    """|a - b| / |b| allowed between two float32 evaluations of LPIPS on `side`x`side` images
    (half of it against float64, whose own rounding is 2**29 times smaller), derived from
    float32 rounding (tests/tolerances.py): the convolutions up to the last layer, then the
    channel normalisation (a sum over the channels), the 1x1 "lin" layer (another), and the
    spatial mean (at most side*side positions), as one sum. The lin weights are non-negative and
    the squared differences too, so the last sums' partial sums stay within the distance: the
    bound is relative to it. AlexNet 1.2e-4, VGG 1.6e-4 at 128x128 (two-sided)."""
    reductions = [*CONV_REDUCTIONS[net], WIDEST[net], WIDEST[net], side * side]
    return tolerances.network_atol(reductions, 1.0) / (2 if one_sided else 1)


def _kodak_pairs(size: int = 128):
    """Kodak photos 1-4 (centre crops) vs distorted copies: blur, noise, a grey hole, another
    photo. Float32 [4, size, size, 3] in [0, 1] each."""
    kodak = shared_path("data", "kodak")
    photos = []
    for i in range(1, 6):
        img = Image.open(kodak / f"{i:02d}.png").convert("RGB")
        w, h = img.size
        box = ((w - 2 * size) // 2, (h - 2 * size) // 2, (w + 2 * size) // 2, (h + 2 * size) // 2)
        photos.append(np.asarray(img.crop(box).resize((size, size), Image.BICUBIC)))
    truth = np.stack(photos[:4]).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    blurred = np.asarray(
        Image.fromarray(photos[0]).resize((size // 4, size // 4)).resize((size, size))
    )
    noisy = np.clip(truth[1] + rng.normal(0, 0.1, truth[1].shape), 0, 1)
    holed = truth[2].copy()
    holed[size // 4 : size // 2, size // 4 : 3 * size // 4] = 0.5
    other = photos[4].astype(np.float32) / 255.0
    distorted = np.stack([blurred.astype(np.float32) / 255.0, noisy, holed, other])
    return distorted.astype(np.float32), truth


def _torch_lpips(net, output, target):
    model = LPIPSTorch(lpips.load_params(net), net).eval()
    to_t = lambda x: torch.from_numpy(2.0 * x.transpose(0, 3, 1, 2) - 1.0).double()
    with torch.no_grad():  # float64: the reference's own rounding stays far below 1e-5
        return model.double()(to_t(output), to_t(target)).numpy()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_torch_reference_on_photos(net):
    output, target = _kodak_pairs()
    ours = np.asarray(lpips.lpips(output, target, net))
    ref = _torch_lpips(net, output, target)
    assert ours.shape == (4,)
    # Float32 against float64: measured <= 1.7e-7 (AlexNet) and 5.5e-8 (VGG); a wrong layer,
    # normalisation or weight is off by order 1.
    np.testing.assert_allclose(ours, ref, rtol=lpips_rtol(net, 128, one_sided=True))
    # Blur, noise and a hole are small distortions; another photo is a large one.
    assert np.all(ref[:3] > 0.01) and ref[3] > ref[:3].max()


def test_lpips_is_zero_for_identical_images_and_symmetric():
    output, target = _kodak_pairs(64)
    assert np.allclose(np.asarray(lpips.lpips(target, target)), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(lpips.lpips(output, target)),
        np.asarray(lpips.lpips(target, output)),
        rtol=lpips_rtol("alex", 64, one_sided=False),  # the same sums, the images swapped
    )


def test_lpips_rejects_bad_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        lpips.lpips(np.zeros((1, 64, 64, 3)), np.zeros((1, 64, 64, 1)))
    with pytest.raises(ValueError, match="at least 32"):
        lpips.lpips(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        lpips.weights_path("squeeze")
