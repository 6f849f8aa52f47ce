"""Linear interpolation on the sphere: barycentric weights on the spherical Delaunay triangulation.

The Delaunay triangulation of points on a sphere is the convex hull of their unit vectors
(scipy.spatial.ConvexHull, Qhull), so each hull facet is a triangle of three observed cells
whose circumcircle holds no other observed cell. A missing cell p lies in the facet whose cone
from the origin contains it: p = a v0 + b v1 + c v2 with a, b, c >= 0. Its value is the
barycentric mean (a f0 + b f1 + c f2) / (a + b + c), which is exact for a constant field and,
for a field linear in 3-D coordinates, off by |gradient| * (1 - cos(circumradius)) at most (the
facet lies that far inside the sphere). Chosen over scipy's griddata in (lon, lat) with copies of
the points shifted by +-360 degrees because that plane is torn at the poles and stretches
triangles near them; the hull has neither problem. Missing cells in no facet's cone (when all
observed cells lie in one hemisphere the origin is outside the hull) take the nearest observed
cell.
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

CANDIDATE_FACETS = 12  # facets tried per point, by centroid direction, before a full search
TOLERANCE = 1e-9  # barycentric weights this far below 0 still count as inside (round-off)


def _weights(corners_k33: np.ndarray, points_k3: np.ndarray) -> np.ndarray:
    """[K, 3] solutions w of corners^T w = p (corners_k33[k, i] is vertex i of facet k)."""
    return np.linalg.solve(np.swapaxes(corners_k33, 1, 2), points_k3[..., None])[..., 0]


def _search(vertices: np.ndarray, simplices: np.ndarray, points: np.ndarray) -> tuple:
    """For each point, (facet index or -1, barycentric weights [3])."""
    centroids = vertices[simplices].mean(axis=1)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    k = min(CANDIDATE_FACETS, len(simplices))
    _, candidates = spatial.cKDTree(centroids).query(points, k=k)
    candidates = candidates.reshape(len(points), k)
    facet = np.full(len(points), -1)
    weights = np.zeros((len(points), 3))
    for column in range(k):
        todo = np.flatnonzero(facet < 0)
        w = _weights(vertices[simplices[candidates[todo, column]]], points[todo])
        inside = (w >= -TOLERANCE).all(axis=1)
        facet[todo[inside]] = candidates[todo[inside], column]
        weights[todo[inside]] = w[inside]
    for i in np.flatnonzero(facet < 0):  # rare: a long thin facet far from its centroid
        w = _weights(vertices[simplices], np.broadcast_to(points[i], (len(simplices), 3)))
        hits = np.flatnonzero((w >= -TOLERANCE).all(axis=1))
        if hits.size:
            facet[i], weights[i] = hits[0], w[hits[0]]
    return facet, weights


def interpolation_weights(observed: np.ndarray, targets: np.ndarray) -> tuple:
    """Sparse linear interpolation from observed to target points on the unit sphere.

    Args:
      observed: [N, 3] unit vectors (N >= 4, not all on one great circle).
      targets: [M, 3] unit vectors.

    Returns:
      (indices [M, 3] into observed, weights [M, 3] summing to 1 per row); a target in no
      facet's cone gets its nearest observed point with weight 1.
    """
    hull = spatial.ConvexHull(observed)
    facet, weights = _search(observed, hull.simplices, targets)
    indices = np.zeros((len(targets), 3), dtype=np.int64)
    found = facet >= 0
    indices[found] = hull.simplices[facet[found]]
    weights[found] /= weights[found].sum(axis=1, keepdims=True)
    nearest = spatial.cKDTree(observed).query(targets[~found])[1]
    indices[~found] = np.asarray(nearest)[:, None]
    weights[~found] = (1.0, 0.0, 0.0)
    return indices, weights
