"""U-IDS and P-IDS (metrics/ids.py) on constructed cases and a hand computation, and their rows
in the pooled table (eval/pooled.py)."""

import numpy as np
import pytest

from pconv_jax.eval import grouping, pooled
from pconv_jax.metrics import fid, ids, inception

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


def test_pooled_rows_report_ids_only_from_the_minimum(tmp_path, monkeypatch):
    """13 pairs with 4-d features (minimum 8): bucket 0 (10 pairs) and "all" get U-/P-IDS,
    bucket 1 (3 pairs) n/a; the values are ids.ids of those pairs' stored features."""
    monkeypatch.setattr(inception, "FEATURE_DIM", 4)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(13):
        np.save(tmp_path / f"{i:06d}.npy", rng.normal(size=(2, 4)) + [[1.0], [0.0]])
        rows.append({"pair": i, "bucket": 0 if i < 10 else 1, "border": i % 2 == 0})
    table_rows, notes = pooled.pooled_rows(rows, tmp_path, {}, grouping.PAPER)
    by_key = {r.key: r.values for r in table_rows}
    features = np.stack([np.load(tmp_path / f"{i:06d}.npy") for i in range(13)])
    u0, p0 = ids.ids(features[:10, 1], features[:10, 0])
    assert by_key["u_ids"]["0"] == pytest.approx(100 * u0)
    assert by_key["p_ids"]["0"] == pytest.approx(100 * p0)
    assert by_key["u_ids"]["1"] is None and by_key["p_ids"]["2"] is None
    assert by_key["u_ids"]["all"] == pytest.approx(100 * ids.ids(features[:, 1], features[:, 0])[0])
    assert by_key["fid"]["1"] == fid.fid_from_features(features[10:, 1], features[10:, 0], "svd")
    assert any("n/a below 8 pairs" in note for note in notes)
