"""Tolerances for comparing two float32 computations of the same quantity, derived, not measured.

Two different programs (two XLA programs, JAX and PyTorch, onnxruntime and JAX, a sharded and an
unsharded jit, the same program on another CPU with other SIMD widths or FMA use) add the same
terms in different orders. A float32 sum of k terms rounds k times, each time by at most eps/2 of
the partial sum (eps = 2**-23). The roundings are independent with mean ~0, so their total
grows like sqrt(k), not k: with probability at least 1 - delta per value it stays within
lambda * sqrt(k) * eps/2 * scale, lambda = sqrt(2 ln(2 / delta)) (Higham and Mary, "A New
Approach to Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 2019), where `scale`
bounds the partial sums. The difference of two such evaluations is within twice that. SAFETY is
lambda for delta = 1e-7 per compared value (5.8; tests compare at most ~1e6 values), rounded up
to 6.

A network of layers l = 1..L, each a sum of k_l terms on activations of unit scale (BN or He
initialisation keeps them there), adds each layer's relative rounding error to what arrives
from below, passed on with gain ~1; independent layers add in quadrature, so the output's
error is that of one sum of sum(k_l) terms, relative to the output's scale.

`scale` is always the largest magnitude of the compared values (before any clipping), so a
tolerance holds whatever values the test draws.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

EPS32 = 2.0**-23  # float32 machine epsilon (np.finfo(np.float32).eps)
SAFETY = 6.0  # lambda(delta = 1e-7) = sqrt(2 ln(2e7)) = 5.8, rounded up (module docstring)


def sum_atol(k: int, scale: float, safety: float = SAFETY) -> float:
    """|a - b| allowed between two float32 evaluations of one sum of `k` terms whose partial
    sums stay within `scale` in size: 2 * safety * sqrt(k) * eps/2 * scale. For a mean of k
    terms (the sum divided by k), `scale` is the largest term."""
    return safety * math.sqrt(k) * EPS32 * scale


def network_atol(reductions: Iterable[int], scale: float, safety: float = SAFETY) -> float:
    """|a - b| allowed between two float32 evaluations of a network whose layers sum
    `reductions` = (k_1, ..., k_L) terms each and whose outputs reach `scale` in size: one sum
    of sum(k_l) terms (module docstring)."""
    return sum_atol(sum(reductions), scale, safety)


def unet_reductions(num_layers: int, image_channels: int = 3) -> list[int]:
    """The reduction length (kernel height x width x input channels) of each convolution of the
    paper's PConv U-Net with `num_layers` encoder levels (nn/model.py): the encoder's 7x7, 5x5,
    5x5, 3x3... on 3, 64, 128, 256, 512... channels, then the decoder's 3x3 on the upsampled
    features concatenated with the skip (dec1: with the input image)."""
    specs = [(7, 64), (5, 128), (5, 256)] + [(3, 512)] * (num_layers - 3)
    channels = [image_channels] + [features for _, features in specs]
    encoder = [k * k * c_in for (k, _), c_in in zip(specs, channels)]
    decoder = []
    below = channels[-1]
    for level in range(num_layers, 0, -1):
        skip = channels[level - 1]
        decoder.append(3 * 3 * (below + skip))
        below = skip if level > 1 else 3
    return encoder + decoder
