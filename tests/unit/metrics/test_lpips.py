"""LPIPS (pconv_jax.metrics.lpips) against an independent PyTorch computation (torch_ref/lpips.py)
of the same formula from the same weights, on real photos (Kodak)."""

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_jax.metrics import lpips

from conftest import shared_path
from torch_ref.lpips import LPIPSTorch


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
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # Blur, noise and a hole are small distortions; another photo is a large one.
    assert np.all(ref[:3] > 0.01) and ref[3] > ref[:3].max()


def test_lpips_is_zero_for_identical_images_and_symmetric():
    output, target = _kodak_pairs(64)
    assert np.allclose(np.asarray(lpips.lpips(target, target)), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(lpips.lpips(output, target)), np.asarray(lpips.lpips(target, output)), rtol=1e-5
    )


def test_lpips_rejects_bad_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        lpips.lpips(np.zeros((1, 64, 64, 3)), np.zeros((1, 64, 64, 1)))
    with pytest.raises(ValueError, match="at least 32"):
        lpips.lpips(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="unknown LPIPS net"):
        lpips.weights_path("squeeze")
