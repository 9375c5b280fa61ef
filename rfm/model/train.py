"""`train_model`: fit the pipeline for one k and describe it (names, centroids, provenance).

scikit-learn, skops and rfm.data.table (duckdb) are imported when a model is trained, not with the
module: `import rfm.model` serves code that only loads and scores models.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import rfm
from rfm.model.metadata import (
    METADATA_FORMAT,
    Centroid,
    ClusterInfo,
    KMeansConfig,
    ModelMetadata,
    ModelMetrics,
    RowCounts,
)
from rfm.model.naming import default_names, value_order
from rfm.model.pipeline import (
    DEFAULT_SEED,
    FEATURES,
    TRAIN_N_INIT,
    TRANSFORM,
    build_pipeline,
    centroids_original,
    check_k,
    training_data,
)
from rfm.model.segment_model import SegmentModel
from rfm.model.sweep import (
    SILHOUETTE_SAMPLE,
    THREADS,
    SweepResult,
    cluster_metrics,
    silhouette_indices,
    silhouettes_from_sample,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from rfm.data.table import RfmResult


def train_model(
    rfm_table: pd.DataFrame | RfmResult,
    k: int,
    *,
    seed: int = DEFAULT_SEED,
    rfm_result: RfmResult | None = None,
    sweep_result: SweepResult | None = None,
    data_label: str | None = None,
) -> SegmentModel:
    """Fit log1p -> StandardScaler -> KMeans(k) on the customers with positive monetary.

    Deterministic for the same table, k and seed. Pass the `RfmResult` (or give it as the table) so the
    metadata records the snapshot date, returns policy and data fingerprint; pass a `SweepResult` to
    keep the sweep's metrics with the model; `data_label` says what the data was ("demo data",
    "online_retail.parquet", "athena:db.table") and is recorded as is. The model is not saved: see
    `ModelStore.save`.
    """
    from rfm.data.table import RfmResult

    if isinstance(rfm_table, RfmResult):
        rfm_result = rfm_result or rfm_table
        rfm_table = rfm_table.table
    data = training_data(rfm_table)
    check_k(k, data)
    with threadpool_limits(THREADS):  # see rfm.model.sweep: threads only slow 3-D KMeans down
        pipeline = build_pipeline(k, seed=seed, n_init=TRAIN_N_INIT).fit(data.X)
        _order_by_value(pipeline)
        labels = pipeline.named_steps["kmeans"].labels_
        metrics = _model_metrics(pipeline, data.X, labels, seed)
    centroids = centroids_original(pipeline)
    names = default_names(centroids, data.X, value_rank=range(k))
    counts = np.bincount(labels, minlength=k)
    clusters = [
        ClusterInfo(
            id=i,
            name=names[i],
            default_name=names[i],
            centroid=Centroid(**{f: round(float(v), 4) for f, v in zip(FEATURES, centroids[i], strict=True)}),
            customers=int(counts[i]),
        )
        for i in range(k)
    ]
    metadata = ModelMetadata(
        format=METADATA_FORMAT,
        version=None,
        created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        k=int(k),
        seed=int(seed),
        features=list(FEATURES),
        transform=TRANSFORM,
        pipeline={name: type(step).__name__ for name, step in pipeline.steps},
        kmeans=KMeansConfig(n_init=TRAIN_N_INIT, init="k-means++", algorithm="lloyd"),
        snapshot=rfm_result.snapshot if rfm_result else None,
        returns_policy=str(rfm_result.options.returns) if rfm_result else None,  # a StrEnum: its value
        data_fingerprint=rfm_result.fingerprint if rfm_result else None,
        data_label=data_label,
        rows=RowCounts(
            customers=int(data.customers),
            trained_customers=data.trained_customers,
            excluded_customers=int(data.excluded_customers),
            excluded_revenue=round(float(data.excluded_revenue), 2),
        ),
        metrics=metrics,
        sweep=sweep_result.as_dict() if sweep_result else None,
        clusters=clusters,
        libraries=_libraries(),
        sha256=None,
    )
    return SegmentModel(pipeline, metadata)


def _libraries() -> dict[str, str]:
    """The versions the saved pipeline depends on (recorded so a failed load can be explained)."""
    from importlib.metadata import version

    import sklearn

    return {
        "python": platform.python_version(),
        "rfm": rfm.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "skops": version("skops"),
    }


def _order_by_value(pipeline: Pipeline) -> None:
    """Renumber clusters from most to least valuable, so ids read the same way in every model."""
    kmeans = pipeline.named_steps["kmeans"]
    order = value_order(kmeans.cluster_centers_)
    new_id = np.empty_like(order)
    new_id[order] = np.arange(len(order))
    kmeans.cluster_centers_ = np.ascontiguousarray(kmeans.cluster_centers_[order])
    kmeans.labels_ = new_id[kmeans.labels_].astype(kmeans.labels_.dtype)


def _model_metrics(pipeline: Pipeline, X: np.ndarray, labels: np.ndarray, seed: int) -> ModelMetrics:
    """The trained model's own metrics, computed like the sweep's."""
    Z = pipeline[:-1].transform(X)
    k = int(labels.max()) + 1
    sample = silhouette_indices(len(Z), SILHOUETTE_SAMPLE, seed)
    silhouette = silhouettes_from_sample(Z[sample], {k: labels[sample]})[k]
    metrics = cluster_metrics(Z, k, labels, silhouette)
    return ModelMetrics(
        inertia=float(metrics.inertia),
        silhouette=float(metrics.silhouette),
        silhouette_sample=len(sample),
        davies_bouldin=float(metrics.davies_bouldin),
        calinski_harabasz=float(metrics.calinski_harabasz),
        smallest_cluster_share=float(metrics.smallest_cluster_share),
    )
