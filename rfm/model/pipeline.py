"""The segmentation pipeline and the training data it is fitted on.

One scikit-learn Pipeline: log1p on recency, frequency, monetary (the three are heavy-tailed, so
distances on raw values would be dominated by a few wholesalers) -> StandardScaler (equal weight
for the three) -> KMeans. Only customers with a positive net monetary are trained on: a customer
whose returns cancel their purchases has no spend to segment on.

scikit-learn is imported by `build_pipeline` only: FEATURES and the training-data helpers are used
by code that loads and scores models, which must not pay for importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rfm.errors import ModelError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

FEATURES: tuple[str, ...] = ("recency", "frequency", "monetary")
TRANSFORM = "log1p -> StandardScaler -> KMeans"
DEFAULT_SEED = 42
# KMeans restarts for a model that is kept: quality over speed (the sweep uses a faster config).
TRAIN_N_INIT = 10


def build_pipeline(k: int, seed: int = DEFAULT_SEED, n_init: int = TRAIN_N_INIT) -> Pipeline:
    """An unfitted pipeline. np.log1p / np.expm1 are numpy ufuncs, which skops saves by name, so the
    saved pipeline (model.skops) loads with a short list of trusted types and no project code."""
    from sklearn.cluster import KMeans
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline(
        [
            ("log1p", FunctionTransformer(np.log1p, inverse_func=np.expm1, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=n_init, random_state=seed)),
        ]
    )


@dataclass(frozen=True)
class TrainingData:
    """The RFM rows a model is fitted on, and what was kept out (and why it is reported)."""

    X: np.ndarray  # (n, 3) float64: recency, frequency, monetary of the trained customers
    mask: np.ndarray  # bool per row of the input table: True = used for training
    customers: int  # rows in the input table
    excluded_customers: int  # monetary <= 0
    excluded_revenue: float  # their net monetary (zero or negative)

    @property
    def trained_customers(self) -> int:
        return int(self.X.shape[0])

    def summary(self) -> dict[str, float | int]:
        return {
            "customers": self.customers,
            "trained_customers": self.trained_customers,
            "excluded_customers": self.excluded_customers,
            "excluded_revenue": round(self.excluded_revenue, 2),
        }


def training_data(table: pd.DataFrame) -> TrainingData:
    """Split an RFM table into trainable rows (monetary > 0) and the excluded remainder."""
    missing = [c for c in FEATURES if c not in table.columns]
    if missing:
        raise ModelError(f"the RFM table has no column {', '.join(missing)} (expected {', '.join(FEATURES)})")
    values = table[list(FEATURES)].to_numpy(dtype="float64", na_value=np.nan)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise ModelError(f"the RFM table has a missing or infinite value in row {row}: {values[row].tolist()}")
    if (values[:, :2] < 0).any():
        raise ModelError("the RFM table has a negative recency or frequency")
    mask = values[:, 2] > 0
    return TrainingData(
        X=np.ascontiguousarray(values[mask]),
        mask=mask,
        customers=len(values),
        excluded_customers=int((~mask).sum()),
        excluded_revenue=float(values[~mask, 2].sum()),
    )


def check_k(k: int, data: TrainingData) -> None:
    """k must be at least 2 and leave every cluster room (k < trained customers, k <= distinct points)."""
    if k < 2:
        raise ModelError(f"k must be at least 2, got {k}")
    n = data.trained_customers
    if k >= n:
        raise ModelError(
            f"k={k} needs at least {k + 1} customers with a positive net monetary; the table has {n}"
            + (f" ({data.excluded_customers} more with zero or negative monetary are not trained on)"
               if data.excluded_customers else "")
        )
    distinct = len(np.unique(data.X, axis=0))
    if k > distinct:
        raise ModelError(f"k={k} is more than the {distinct} distinct (recency, frequency, monetary) points")


def centroids_original(pipeline: Pipeline) -> np.ndarray:
    """Cluster centres in original units (days, orders, money): the inverse of scale and log1p."""
    scaled = pipeline.named_steps["kmeans"].cluster_centers_
    return np.expm1(pipeline.named_steps["scale"].inverse_transform(scaled))
