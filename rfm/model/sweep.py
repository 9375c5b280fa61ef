"""Choosing k: one pass over k = k_min..k_max with every metric an analyst looks at.

Why it is fast (see benchmarks/sweep.py): the log1p + StandardScaler transform is computed once;
each k is fitted with a few k-means++ restarts on a seeded subsample (cheap) and the best centres are
then refined by one Lloyd run on every customer; Davies-Bouldin and Calinski-Harabasz are O(n k);
and the silhouette of every k is computed from ONE pairwise-distance matrix of a seeded sample
(5,000 customers by default), reused by all k through a matrix product with the one-hot labels,
instead of recomputing the distances for each k as `silhouette_score` does. Inertia, Davies-Bouldin
and Calinski-Harabasz come from one pass over the distances to the centres (same definitions as
scikit-learn's, tested against them). Work runs on one thread: on 3-D data OpenMP/BLAS threads buy
little, and on a shared machine they spin and make KMeans several times slower. scikit-learn is
imported when KMeans is fitted, not with the module (importing rfm.model must stay cheap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rfm.errors import ModelError
from rfm.model.pipeline import DEFAULT_SEED, TrainingData, check_k, training_data

SILHOUETTE_SAMPLE = 5_000
MIN_CLUSTER_SHARE = 0.05  # a recommended k has no cluster smaller than this share of customers
FIT_SAMPLE = 20_000  # restarts run on at most this many customers, then one full refinement
FIT_RESTARTS = 4
THREADS = 1
_CHUNK = 1_024


@dataclass(frozen=True)
class KMetrics:
    """The metrics of one k."""

    k: int
    inertia: float
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    smallest_cluster_share: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "k": self.k,
            "inertia": self.inertia,
            "silhouette": self.silhouette,
            "davies_bouldin": self.davies_bouldin,
            "calinski_harabasz": self.calinski_harabasz,
            "smallest_cluster_share": self.smallest_cluster_share,
        }


@dataclass(frozen=True)
class SweepResult:
    """Metrics per k, the recommended k and why, and how silhouette was computed."""

    metrics: list[KMetrics]
    recommended_k: int
    reason: str
    customers: int  # trained customers (monetary > 0)
    excluded_customers: int
    excluded_revenue: float
    silhouette_sample: int  # customers silhouette was computed on (== customers when not sampled)
    seed: int
    labels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # per k, on trained rows

    @property
    def silhouette_sampled(self) -> bool:
        return self.silhouette_sample < self.customers

    @property
    def silhouette_note(self) -> str:
        if self.silhouette_sampled:
            return (f"silhouette on a seeded sample of {self.silhouette_sample:,} of {self.customers:,} "
                    f"customers (seed {self.seed})")
        return f"silhouette on all {self.customers:,} customers"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([m.as_dict() for m in self.metrics])

    def for_k(self, k: int) -> KMetrics | None:
        return next((m for m in self.metrics if m.k == k), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "metrics": [m.as_dict() for m in self.metrics],
            "recommended_k": self.recommended_k,
            "reason": self.reason,
            "customers": self.customers,
            "excluded_customers": self.excluded_customers,
            "excluded_revenue": round(self.excluded_revenue, 2),
            "silhouette_sample": self.silhouette_sample,
            "silhouette_sampled": self.silhouette_sampled,
            "silhouette_note": self.silhouette_note,
            "seed": self.seed,
        }


def sweep(
    rfm_table: pd.DataFrame,
    k_min: int = 2,
    k_max: int = 10,
    *,
    seed: int = DEFAULT_SEED,
    silhouette_sample: int = SILHOUETTE_SAMPLE,
    min_cluster_share: float = MIN_CLUSTER_SHARE,
) -> SweepResult:
    """Fit k = k_min..k_max on the RFM table's trainable customers and recommend a k."""
    if k_min > k_max:
        raise ModelError(f"--k-min ({k_min}) is larger than --k-max ({k_max})")
    data = training_data(rfm_table)
    check_k(k_min, data)
    check_k(k_max, data)
    Z = scaled(data)
    ks = list(range(k_min, k_max + 1))
    with threadpool_limits(THREADS):
        labels = {k: fit_labels(Z, k, seed) for k in ks}
        sample = silhouette_indices(len(Z), silhouette_sample, seed)
        silhouettes = silhouettes_from_sample(Z[sample], {k: labels[k][sample] for k in ks})
        metrics = [cluster_metrics(Z, k, labels[k], silhouettes[k]) for k in ks]
    recommended, reason = recommend(metrics, min_cluster_share)
    return SweepResult(
        metrics=metrics,
        recommended_k=recommended,
        reason=reason,
        customers=data.trained_customers,
        excluded_customers=data.excluded_customers,
        excluded_revenue=data.excluded_revenue,
        silhouette_sample=len(sample),
        seed=seed,
        labels=labels,
    )


def scaled(data: TrainingData) -> np.ndarray:
    """log1p then standardise (population std, as StandardScaler): the space KMeans works in."""
    logged = np.log1p(data.X)
    std = logged.std(axis=0)
    std[std == 0] = 1.0  # StandardScaler leaves constant features unscaled
    return np.ascontiguousarray((logged - logged.mean(axis=0)) / std)


def import_estimators() -> None:
    """Import scikit-learn's KMeans now (about 1.7 s, most of it scipy) rather than at the first fit:
    for a server that warms up before its first visitor."""
    from sklearn.cluster import KMeans  # noqa: F401


def fit_labels(Z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans labels for one k: restarts on a subsample, the best centres refined on all rows."""
    from sklearn.cluster import KMeans

    init: str | np.ndarray = "k-means++"
    if len(Z) > FIT_SAMPLE:
        rng = np.random.default_rng(seed + k)
        sub = Z[rng.choice(len(Z), FIT_SAMPLE, replace=False)]
        init = KMeans(k, n_init=FIT_RESTARTS, random_state=seed).fit(sub).cluster_centers_
        km = KMeans(k, init=init, n_init=1, random_state=seed).fit(Z)
    else:
        km = KMeans(k, n_init=FIT_RESTARTS, random_state=seed).fit(Z)
    return km.labels_.astype("int64")


def silhouette_indices(n: int, sample_size: int, seed: int) -> np.ndarray:
    """The same seeded sample `sklearn.metrics.silhouette_score(..., sample_size, random_state=seed)`
    draws (its `check_random_state(seed)` is this RandomState), so results can be checked against it;
    everyone when the table is small."""
    if n <= sample_size:
        return np.arange(n)
    return np.random.RandomState(seed).permutation(n)[:sample_size]


def silhouettes_from_sample(Z: np.ndarray, labels: dict[int, np.ndarray]) -> dict[int, float]:
    """Mean silhouette of every labelling of the same points, from one pass over their distances.

    For each chunk of rows: the Euclidean distances to all points (computed once), times the one-hot
    matrix of every k stacked side by side, gives each point's summed distance to each cluster of
    each k. Then a = own-cluster sum / (size - 1), b = smallest mean over other clusters, and
    s = (b - a) / max(a, b), with s = 0 for a point alone in its cluster (as scikit-learn does).
    """
    n = len(Z)
    ks = list(labels)
    offsets = np.cumsum([0, *ks])
    onehot = np.zeros((n, offsets[-1]), dtype="float64")
    for j, k in enumerate(ks):
        onehot[np.arange(n), offsets[j] + labels[k]] = 1.0
    sizes = onehot.sum(axis=0)
    sums = np.empty((n, offsets[-1]), dtype="float64")
    sq = (Z**2).sum(axis=1)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Z[start:stop] @ Z.T)
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums[start:stop] = np.sqrt(d2, out=d2) @ onehot
    out: dict[int, float] = {}
    rows = np.arange(n)
    for j, k in enumerate(ks):
        block = sums[:, offsets[j]:offsets[j + 1]]
        size = sizes[offsets[j]:offsets[j + 1]]
        own = labels[k]
        own_size = size[own]
        a = block[rows, own] / np.maximum(own_size - 1, 1)
        means = block / size[None, :]
        means[rows, own] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
        out[k] = float(np.nan_to_num(s).mean())
    return out


def cluster_metrics(Z: np.ndarray, k: int, labels: np.ndarray, silhouette: float) -> KMetrics:
    """Inertia, Davies-Bouldin, Calinski-Harabasz (scikit-learn's definitions) in O(n) numpy."""
    n = len(Z)
    counts = np.bincount(labels, minlength=k)
    centers = np.zeros((k, Z.shape[1]))
    np.add.at(centers, labels, Z)
    centers /= np.maximum(counts, 1)[:, None]
    sq = ((Z - centers[labels]) ** 2).sum(axis=1)
    inertia = float(sq.sum())
    # Davies-Bouldin: mean over clusters of max_j (s_i + s_j) / d(c_i, c_j), s = mean distance to centre.
    spread = np.bincount(labels, weights=np.sqrt(sq), minlength=k) / np.maximum(counts, 1)
    between = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(spread, 0) or np.allclose(between, 0):
        davies_bouldin = 0.0
    else:
        between[between == 0] = np.inf
        davies_bouldin = float(np.max((spread[:, None] + spread[None, :]) / between, axis=1).mean())
    # Calinski-Harabasz: between-cluster dispersion / within-cluster dispersion, degrees of freedom.
    extra = float((counts * ((centers - Z.mean(axis=0)) ** 2).sum(axis=1)).sum())
    calinski_harabasz = 1.0 if inertia == 0 else extra * (n - k) / (inertia * (k - 1))
    return KMetrics(
        k=k,
        inertia=inertia,
        silhouette=silhouette,
        davies_bouldin=davies_bouldin,
        calinski_harabasz=float(calinski_harabasz),
        smallest_cluster_share=float(counts.min() / n),
    )


MIN_ACTIONABLE_K = 3  # two segments ("good" and "bad" customers) are rarely something a marketer can act on


def recommend(metrics: list[KMetrics], min_cluster_share: float = MIN_CLUSTER_SHARE) -> tuple[int, str]:
    """The k with the best silhouette among those whose smallest cluster is not tiny.

    k = 2 almost always has the best silhouette on log-scaled RFM data, yet splits customers only into
    better and worse; it is recommended only when the sweep offers nothing from k = 3 up.
    """
    actionable = [m for m in metrics if m.k >= MIN_ACTIONABLE_K]
    if actionable and len(actionable) < len(metrics):
        k, reason = _best_silhouette(actionable, min_cluster_share)
        return k, reason + f"; k < {MIN_ACTIONABLE_K} is not considered (too coarse to act on)"
    return _best_silhouette(metrics, min_cluster_share)


def _best_silhouette(metrics: list[KMetrics], min_cluster_share: float) -> tuple[int, str]:
    best_overall = max(metrics, key=lambda m: m.silhouette)
    eligible = [m for m in metrics if m.smallest_cluster_share >= min_cluster_share]
    share = f"{min_cluster_share:.0%}"
    if not eligible:
        return best_overall.k, (
            f"k={best_overall.k}: highest silhouette ({best_overall.silhouette:.3f}); note every k has a "
            f"cluster under {share} of customers"
        )
    best = max(eligible, key=lambda m: m.silhouette)
    reason = (
        f"k={best.k}: highest silhouette ({best.silhouette:.3f}) among k whose smallest cluster holds "
        f"at least {share} of customers (smallest here: {best.smallest_cluster_share:.1%})"
    )
    if best_overall.k != best.k:
        reason += (
            f"; k={best_overall.k} scores higher ({best_overall.silhouette:.3f}) but its smallest cluster "
            f"holds only {best_overall.smallest_cluster_share:.1%}"
        )
    return best.k, reason
