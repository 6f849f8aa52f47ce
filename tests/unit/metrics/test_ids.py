"""U-IDS and P-IDS (metrics/ids.py) on constructed cases and a hand computation. Their rows in
the pooled table: tests/unit/eval/test_pooled.py."""

import numpy as np
import pytest

from pconv_jax.metrics import ids, inception

pytest.importorskip("sklearn")


def test_hand_computation_on_a_mirrored_1d_set():
    """real = (2, 3, -1), fake = (-2, -3, 1): the set is its own mirror image (x -> -x with the
    labels swapped), so the strictly convex SVM objective has its optimum at bias 0, and w > 0
    (it classifies 4 of 6 points right, w < 0 only 2). Then by hand: misclassified are real -1
    and fake 1, U-IDS = 2/6; of the pairs (fake, real) = (-2, 2), (-3, 3), (1, -1) only the
    last has decision(fake) > decision(real), P-IDS = 1/3."""
    real = np.array([[2.0], [3.0], [-1.0]])
    fake = -real
    u_ids, p_ids = ids.ids(real, fake)
    assert u_ids == pytest.approx(2 / 6)
    assert p_ids == pytest.approx(1 / 3)


def test_identical_sets_cannot_be_told_apart():
    # Each point carries both labels: any classifier gets exactly one of the two copies right.
    real = np.random.default_rng(0).normal(size=(300, 8))
    u_ids, p_ids = ids.ids(real, real.copy())
    assert u_ids == 0.5
    assert p_ids == 0.0  # ties do not count: a fill equal to the truth is not "more real"


def test_same_distribution_scores_near_one_half_and_separated_sets_zero():
    rng = np.random.default_rng(1)
    n = 2000  # far above ids.min_pairs(8) = 16
    real, fake = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    u_ids, p_ids = ids.ids(real, fake)
    assert 0.42 < u_ids <= 0.5 and 0.42 < p_ids < 0.58
    u_ids, p_ids = ids.ids(real, fake + 10.0)  # fills far from every photo
    assert u_ids == 0.0 and p_ids == 0.0


def test_below_the_minimum_even_identical_distributions_look_separable():
    """Why min_pairs: 2 x 20 points in 64 dimensions are linearly separable whatever their
    labels, so U-IDS of two samples of ONE distribution is ~0 there, not ~0.5."""
    rng = np.random.default_rng(2)
    u_ids, _ = ids.ids(rng.normal(size=(20, 64)), rng.normal(size=(20, 64)))
    assert u_ids < 0.05
    assert ids.min_pairs(inception.FEATURE_DIM) == 4096
    with pytest.raises(ValueError, match="paired features"):
        ids.ids(np.zeros((3, 4)), np.zeros((2, 4)))
