"""Area-weighted scores of gridded infilling, against values derived by hand on tiny grids."""

import numpy as np
import pytest

from pconv_jax.metrics import grid_scores

# Two latitudes, weights cos(0) = 1 and cos(60 deg) = 0.5; two longitudes.
LAT = np.array([0.0, 60.0])
TRUTH = np.array([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 3.0], [4.0, 5.0]]])  # step 1 = step 0 + 1
PREDICTION = np.array([[[1.0, 0.0], [3.0, 1.0]], [[2.0, 1.0], [4.0, 2.0]]])
MASK = np.array([[1.0, 0.0], [1.0, 0.0]])  # the right column is missing


def test_scores_by_hand():
    scores = grid_scores.score(TRUTH, PREDICTION, MASK, LAT)
    # Missing-cell errors per step: -2 (weight 1) and -3 (weight 0.5).
    # RMSE = sqrt((1 * 4 + 0.5 * 9) / 1.5) = sqrt(17 / 3); bias = (-2 - 1.5) / 1.5 = -7 / 3.
    assert scores["rmse"] == pytest.approx(np.sqrt(17 / 3))
    assert scores["bias"] == pytest.approx(-7 / 3)
    # Two missing cells per step, both rising in truth (2 -> 4) and prediction (0 -> 1): +1.
    assert scores["pattern_correlation"] == pytest.approx(1.0)
    # Step 0: infilled global mean (1 * (1 + 0) + 0.5 * (3 + 1)) / 3 = 1, truth (3 + 3.5) / 3 =
    # 13 / 6; step 1 adds 1 to both, so the error is -7/6 each step and the series correlate.
    assert scores["global_mean_rmse"] == pytest.approx(7 / 6)
    assert scores["global_mean_correlation"] == pytest.approx(1.0)


def test_pattern_correlation_is_centred_and_weighted_equal_within_a_row():
    # One row (equal weights), three missing cells: truth 1, 2, 3 and prediction 1, 3, 2 centre to
    # (-1, 0, 1) and (-1, 1, 0): covariance 1, variances 2 and 2, correlation 1/2.
    truth = np.array([[[9.0, 1.0, 2.0, 3.0]]])
    prediction = np.array([[[9.0, 1.0, 3.0, 2.0]]])
    mask = np.array([[1.0, 0.0, 0.0, 0.0]])
    scores = grid_scores.score(truth, prediction, mask, np.array([30.0]))
    assert scores["pattern_correlation"] == pytest.approx(0.5)
    # One time step: a correlation over time is undefined.
    assert np.isnan(scores["global_mean_correlation"])


def test_observed_cells_do_not_count():
    # A wild prediction on observed cells changes no score: they are truth in the infilled field.
    wild = PREDICTION.copy()
    wild[:, :, 0] = 1e6
    assert grid_scores.score(TRUTH, wild, MASK, LAT) == grid_scores.score(
        TRUTH, PREDICTION, MASK, LAT
    )


def test_a_constant_prediction_has_no_pattern_correlation():
    scores = grid_scores.score(TRUTH, np.zeros_like(TRUTH), MASK, LAT)
    assert np.isnan(scores["pattern_correlation"])


def test_global_means_weight_by_cos_latitude():
    field = np.array([[[1.0, 1.0], [4.0, 4.0]]])
    # (1 * 2 + 0.5 * 8) / 3 = 2.
    np.testing.assert_allclose(grid_scores.global_means(field, LAT), [2.0])


def test_bad_shapes_and_full_coverage_are_refused():
    with pytest.raises(ValueError, match="mask"):
        grid_scores.score(TRUTH, PREDICTION, np.ones((3, 2)), LAT)
    with pytest.raises(ValueError, match="no missing cell"):
        grid_scores.score(TRUTH, PREDICTION, np.ones((2, 2)), LAT)
