"""Inpainter: any size, exact known pixels, shape buckets, strategies, errors."""

import jax
import numpy as np
import pytest

from pconv_jax import Inpainter
from pconv_jax.images import to_uint8
from pconv_jax.inference.inpainter import NoHoleWarning, bucket_side, downscale_known
from pconv_jax.store import trained

import tolerances


@pytest.fixture(scope="module")
def inpainter(run_dir):
    return Inpainter.load(run_dir)


def _image_and_mask(height, width, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([np.sin(xx / 9 + c) * 0.4 + 0.5 + 0.1 * np.cos(yy / 7) for c in range(3)], -1)
    image = np.clip(base + 0.03 * rng.normal(size=base.shape), 0, 1)
    if dtype == np.uint8:
        image = to_uint8(image)
    else:
        image = image.astype(dtype)
    known = np.ones((height, width), bool)
    known[height // 4 : height // 2, width // 5 : width // 2] = False
    count = min(40, height * width // 4)
    known[rng.integers(0, height, count), rng.integers(0, width, count)] = False
    return image, known


def test_bucket_side_values():
    # Multiples of the step up to 8 steps, then 8 sizes per doubling (worked out by hand).
    assert [bucket_side(s, 64) for s in (1, 64, 65, 300, 512)] == [64, 64, 128, 320, 512]
    assert bucket_side(513, 64) == 576  # 9 units
    assert bucket_side(1025, 64) == 1152  # 17 units -> granularity 2 -> 18
    assert bucket_side(2049, 64) == 2304  # 33 units -> granularity 4 -> 36
    assert bucket_side(16, 16) == 16 and bucket_side(17, 16) == 32
    assert bucket_side(257, 256) == 512


def test_odd_size_uint8_known_exact_and_holes_from_the_network(inpainter, run_dir):
    image, known = _image_and_mask(301, 257)
    out = inpainter(image, known)
    assert out.dtype == np.uint8 and out.shape == (301, 257, 3)
    np.testing.assert_array_equal(out[known], image[known])
    assert (out[~known] != image[~known]).any()

    # Independent computation: pad by hand to 320x320 (padding = hole), one image, no mesh.
    loaded = trained.load(run_dir)
    model, variables = loaded.model, loaded.variables
    padded = np.zeros((1, 320, 320, 3), np.float32)
    padded[0, :301, :257] = np.where(known[..., None], image / 255.0, 0)
    mask = np.zeros((1, 320, 320, 1), np.float32)
    mask[0, :301, :257, 0] = known
    raw = np.asarray(jax.jit(model.apply)(variables, padded, mask))[0, :301, :257]
    expected = to_uint8(raw)
    # Rounding to uint8 may flip on float noise between the batched and unbatched programs.
    diff = np.abs(out[~known].astype(int) - expected[~known].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_float_input_gives_float_output_and_ignores_hole_values(inpainter):
    image, known = _image_and_mask(40, 70, dtype=np.float32)
    out = inpainter(image, known.astype(np.float32)[..., None])
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_array_equal(out[known], image[known])
    assert out[~known].min() >= 0 and out[~known].max() <= 1
    garbage = image.copy()
    garbage[~known] = np.nan  # holes may hold anything
    np.testing.assert_array_equal(inpainter(garbage, known), out)


def test_batches_match_single_calls(inpainter):
    pairs = [
        _image_and_mask(h, w, seed=i) for i, (h, w) in enumerate([(40, 50), (33, 61), (90, 20)])
    ]
    outs = inpainter([p[0] for p in pairs], [p[1] for p in pairs])
    assert isinstance(outs, list) and len(outs) == 3
    for (image, known), out in zip(pairs, outs):
        np.testing.assert_array_equal(out, inpainter(image, known))
    stacked = inpainter(np.stack([pairs[0][0]] * 5), np.stack([pairs[0][1]] * 5))
    assert isinstance(stacked, np.ndarray) and stacked.shape == (5, 40, 50, 3)
    np.testing.assert_array_equal(stacked, np.stack([outs[0]] * 5))


def test_one_compilation_per_shape_bucket(run_dir):
    loaded = trained.load(run_dir)
    model, variables = loaded.model, loaded.variables
    inp = Inpainter.from_model(model, variables)  # a fresh jit cache
    assert inp.bucket_step == 64 and inp.batch_size == jax.local_device_count() == 4
    for height, width in [(37, 45), (50, 61), (64, 64), (3, 2)]:
        inp(*_image_and_mask(height, width))
    assert inp.num_compilations == 1  # all in the 64x64 bucket, batch padded to 4
    inp(*_image_and_mask(65, 30))
    assert inp.num_compilations == 2  # 128x64
    images, masks = zip(*[_image_and_mask(30 + i, 40, seed=i) for i in range(7)])
    inp(list(images), list(masks))  # two chunks of 4 (one padded): the first bucket again
    assert inp.num_compilations == 2
    big = Inpainter.from_model(model, variables, batch_size=8)
    big(list(images), list(masks))
    big(*_image_and_mask(20, 20))
    assert big.num_compilations == 2  # batch 8 and batch 4 (one image padded to the devices)


def test_no_hole_returns_image_unchanged_with_warning(inpainter):
    image, _ = _image_and_mask(30, 30)
    with pytest.warns(NoHoleWarning, match="no hole"):
        out = inpainter(image, np.ones((30, 30), bool))
    np.testing.assert_array_equal(out, image)


def test_bad_inputs_raise_clear_errors(inpainter):
    image, known = _image_and_mask(30, 40)
    with pytest.raises(ValueError, match="no known pixel"):
        inpainter(image, np.zeros((30, 40), bool))
    with pytest.raises(ValueError, match=r"30x40 \(HxW\) but its mask is 40x30"):
        inpainter(image, known.T)
    with pytest.raises(ValueError, match=r"only 0 \(hole\) and 1 \(known\); found values \[255"):
        inpainter(image, known.astype(np.uint8) * 255)
    with pytest.raises(ValueError, match=r"expected \[H,W,3\] RGB"):
        inpainter(image[..., :1], known)
    with pytest.raises(ValueError, match="must be finite and in"):
        inpainter(image.astype(np.float32), known)  # 0..255 floats
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        inpainter([image, image], [known])
    with pytest.raises(ValueError, match="strategy must be one of"):
        inpainter(image, known, strategy="tile")


def test_downscale_known_is_conservative_and_averages_known_pixels():
    known = np.ones((4, 6), bool)
    known[0, 0] = False
    image = np.arange(72, dtype=np.float32).reshape(4, 6, 3) / 100.0
    image[0, 0] = 9.0  # a hole value that must not leak into the average
    small, small_known = downscale_known(image, known, (2, 3))
    np.testing.assert_array_equal(small_known, [[False, True, True], [True, True, True]])
    np.testing.assert_allclose(small[1, 2], image[2:4, 4:6].mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(small[0, 0], [0, 0, 0])


def test_downscale_strategy_runs_at_training_size(inpainter):
    image, known = _image_and_mask(150, 90)
    before = inpainter.num_compilations
    out = inpainter(image, known, strategy="downscale")  # 32x19 at train_size 32 -> bucket 64x64
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[known], image[known])
    full = inpainter(image, known, strategy="full")  # bucket 192x128
    assert (out[~known] != full[~known]).any()
    assert inpainter.num_compilations - before <= 2
    tiny = Inpainter(inpainter.forward)  # no train_size
    with pytest.raises(ValueError, match="needs train_size"):
        tiny(image, known, strategy="downscale")


def test_hole_values_are_the_networks_output_clipped_and_rounded(run_dir):
    """The holes hold the network's own output: model.apply on the hole-padded input, computed
    here without the Inpainter, clipped to [0,1] (float input) or also rounded to uint8 as
    images.to_uint8 documents (uint8 input). dec1 of the random-weight run is rescaled so that
    most outputs fall inside (0, 1), where clipping hides nothing and a change of scale shows."""
    loaded = trained.load(run_dir)
    variables = jax.tree_util.tree_map(np.asarray, loaded.variables)
    dec1 = variables["params"]["dec1"]["conv"]
    dec1["kernel"], dec1["bias"] = dec1["kernel"] * 0.02, np.full_like(dec1["bias"], 0.5)
    inpainter = Inpainter.from_model(loaded.model, variables)
    image, known = _image_and_mask(40, 70, seed=3)
    hole = ~known

    padded = np.zeros((1, 64, 128, 3), np.float32)  # bucket of 40x70 with step 64, by hand
    padded[0, :40, :70] = np.where(known[..., None], image / 255.0, 0.0)
    mask = np.zeros((1, 64, 128, 1), np.float32)
    mask[0, :40, :70, 0] = known
    # Jitted on one device (eager runs op by op): still another program than the sharded one.
    raw = np.asarray(jax.jit(loaded.model.apply)(variables, padded, mask))[0, :40, :70]
    inside = (raw[hole] > 0.1) & (raw[hole] < 0.9)
    assert inside.mean() > 0.5, "the rescaled network's outputs mostly lie inside (0, 1)"
    # Sharded jit vs one apply, two XLA programs: tolerances.network_atol (tests/tolerances.py).
    atol = tolerances.network_atol(tolerances.unet_reductions(4), float(np.abs(raw).max()))
    assert atol < 1e-4, atol  # far below the 1e-4 .. 9e-4 that a 0.999 scale moves them by

    out_float = inpainter(image.astype(np.float32) / 255.0, known)
    np.testing.assert_allclose(out_float[hole], np.clip(raw, 0.0, 1.0)[hole], rtol=0, atol=atol)

    out = inpainter(image, known)
    expected = np.round(np.clip(raw, 0.0, 1.0) * 255.0)  # images.to_uint8, in float64
    # Equal, except where raw * 255 lies within atol * 255 of a rounding boundary (k + 0.5).
    clear = hole[..., None] & (np.abs((raw * 255.0) % 1.0 - 0.5) > atol * 255.0)
    assert clear.sum() > 0.9 * 3 * hole.sum()
    np.testing.assert_array_equal(out[clear], expected[clear])
    assert np.abs(out[hole].astype(float) - expected[hole]).max() <= 1
