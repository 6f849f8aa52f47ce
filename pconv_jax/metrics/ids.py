"""P-IDS and U-IDS (Zhao et al. 2021, "Large Scale Image Completion via Co-Modulated GANs",
Sec. 4): how well a linear SVM tells filled images from real ones by their Inception features.

A linear SVM (scikit-learn's LinearSVC, primal solver, C = 1, as the authors' code) is fitted to
separate the real features (label 1) from the fake ones (label 0), and scored on the same
features:
- U-IDS (unpaired) = its misclassification rate over both sets: 0.5 when the sets cannot be
  told apart, 0 when they are linearly separable;
- P-IDS (paired) = the fraction of pairs (fake_i, real_i) whose fake the SVM finds more real
  than its own real image, decision(fake_i) > decision(real_i): ~0.5 for fills as real as
  the photos, 0 for clearly separable ones (and 0 for fills identical to the truth: ties do
  not count).

Sample size: N real + N fake points in D dimensions (D = 2048 for the FID features) are
linearly separable for almost any labelling while 2N < 2(D + 1) (Cover 1965: the capacity of
a linear classifier with a bias is 2(D + 1) points), so below that U-IDS is ~0 whatever the
fills. `min_pairs(D) = 2 D` (4096 pairs for Inception features: twice that capacity in points)
is the smallest set we report; even there the in-sample score is biased low.
"""

from __future__ import annotations

import numpy as np

from pconv_jax.errors import UserError


def min_pairs(dim: int) -> int:
    """The fewest pairs for which `ids` is reported, for D-dimensional features: 2 D."""
    return 2 * dim


def ids(real, fake) -> tuple[float, float]:
    """(U-IDS, P-IDS) of paired features real [N, D] and fake [N, D], row i of each a pair.

    Returns:
      Two Python floats in [0, 1] (U-IDS at most ~0.5 for a fitted SVM).
    """
    # Imported here: scikit-learn is needed only by this metric (and takes ~1 s to import).
    from sklearn.svm import LinearSVC

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or real.shape != fake.shape or len(real) < 2:
        raise UserError(f"need paired features [N >= 2, D], got {real.shape} and {fake.shape}")
    inputs = np.concatenate([real, fake])
    targets = np.concatenate([np.ones(len(real), int), np.zeros(len(fake), int)])
    svm = LinearSVC(dual=False)
    svm.fit(inputs, targets)
    u_ids = 1.0 - svm.score(inputs, targets)
    p_ids = np.mean(svm.decision_function(fake) > svm.decision_function(real))
    return float(u_ids), float(p_ids)
