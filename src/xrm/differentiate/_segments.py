"""Needs-based segments: k-means on standardised needs features, k chosen by silhouette.

    >>> result = cluster(features, k=None, k_max=6, seed=0)  # doctest: +SKIP

k-means (Lloyd 1982, k-means++ seeding of Arthur & Vassilvitskii 2007) from scikit-learn, run for
each k in 2..k_max on a sample; the k with the highest mean silhouette (Rousseeuw 1987) on a
sample wins.  The model is then fitted on a larger sample and every customer is assigned to the
nearest centre, so memory and time stay bounded at millions of customers.  Seeded: the same
data give the same segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from xrm.exceptions import ModelError

__all__ = ["Clustering", "cluster", "standardise"]

Array = npt.NDArray[np.float64]
FIT_SAMPLE = 50_000  # rows the final k-means is fitted on
SILHOUETTE_SAMPLE = 2_000  # rows the silhouette of each k is measured on (it is O(n²))


@dataclass
class Clustering:
    labels: npt.NDArray[np.int64]
    k: int
    silhouette: float  # of the chosen k; 0.0 when there is one segment
    scores: dict[int, float]  # silhouette per k tried
    centers: Array  # one row per segment, in the standardised space (what a new profile is near)


def standardise(x: Array) -> tuple[Array, npt.NDArray[np.bool_]]:
    """z-scores of the columns that vary (a constant column says nothing about needs)."""
    std = x.std(axis=0)
    keep = std > 1e-9
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / std[keep]
    return np.asarray(z, dtype=np.float64), keep


def cluster(z: Array, *, k: int | None = None, k_max: int = 6, seed: int = 0) -> Clustering:
    """Segment the rows of ``z`` (standardised features); ``k=None`` chooses k by silhouette."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(z)
    if k is not None and (k < 1 or k > max(n, 1)):
        raise ModelError(f"k = {k} segments must be between 1 and the number of customers ({n})")
    if n == 0:
        raise ModelError("no needs profiles to segment; load orders first")
    distinct = len(np.unique(z, axis=0)) if z.shape[1] else 1
    if k == 1 or z.shape[1] == 0 or distinct < 3 or (k is None and n < 10):
        # Too few customers, or nothing that varies: one segment, stated as such.
        return Clustering(np.zeros(n, dtype=np.int64), 1, 0.0, {}, np.zeros((1, z.shape[1])))
    rng = np.random.default_rng(seed)
    fit_rows = z if n <= FIT_SAMPLE else z[rng.choice(n, FIT_SAMPLE, replace=False)]
    sil_rows = min(len(fit_rows), SILHOUETTE_SAMPLE)
    candidates = [k] if k is not None else list(range(2, min(k_max, distinct - 1, n - 1) + 1))
    scores: dict[int, float] = {}
    models = {}
    for c in candidates:
        km = KMeans(n_clusters=c, n_init=4, random_state=seed).fit(fit_rows)
        models[c] = km
        labels = km.labels_
        if len(np.unique(labels)) < 2:
            scores[c] = -1.0
            continue
        scores[c] = float(silhouette_score(fit_rows, labels, sample_size=sil_rows, random_state=seed))
    best = max(scores, key=lambda c: (scores[c], -c))  # ties: fewer segments
    labels = models[best].predict(z).astype(np.int64)
    centers = np.asarray(models[best].cluster_centers_, dtype=np.float64)
    return Clustering(labels, best, scores[best], scores, centers)
