"""`SegmentModel`: a fitted pipeline plus its metadata (names, centroids, provenance).

Scoring is the hot path of the model server (one customer per request), so `predict` does not go
through the Pipeline: it uses the scaler's mean/scale and the KMeans centres as plain numpy arrays
(`Predictor`), and a row costs a log1p, a subtraction and an argmin (microseconds, no pandas, no
scikit-learn input validation). The result is the same as `pipeline.predict` (tested).

A trained model takes those arrays from its pipeline; a saved one reads them from metadata.json's
"predictor" block, and its `pipeline` is loaded from model.skops only when something asks for it (saving it again,
notebooks), then checked to hold exactly those arrays. So loading a model and scoring never import
scikit-learn. This module does not either.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from rfm.errors import DataError, ModelError
from rfm.model.metadata import ModelMetadata, PredictorBlock
from rfm.model.naming import NOT_SEGMENTED, NOT_SEGMENTED_NAME, check_name
from rfm.model.pipeline import FEATURES
from rfm.model.predictor import Predictor

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


class LazyPipeline:
    """A pipeline loaded on first use, once (thread-safe), and shared by a model and its renamed copies."""

    def __init__(self, load: Callable[[], Pipeline]) -> None:
        self._load: Callable[[], Pipeline] | None = load
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, pipeline: Pipeline) -> LazyPipeline:
        """An already loaded pipeline."""
        lazy = cls(lambda: pipeline)
        lazy.get()
        return lazy

    def get(self) -> Pipeline:
        """The pipeline, loading it now if needed (a failed load raises, and is tried again next time)."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    assert self._load is not None
                    self._pipeline = self._load()
                    self._load = None
        return self._pipeline

    def __getstate__(self) -> dict[str, object]:  # a lock cannot be pickled
        return {"_load": self._load, "_pipeline": self._pipeline}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class ClusterDict(TypedDict):
    """`Cluster.as_dict()`, as the model server's GET /model lists clusters."""

    id: int
    name: str
    centroid: dict[str, float]


@dataclass(frozen=True)
class Cluster:
    """One segment of a model: its id (KMeans label), business name and centroid in original units."""

    id: int
    name: str
    centroid: dict[str, float]

    def as_dict(self) -> ClusterDict:
        return {"id": self.id, "name": self.name, "centroid": dict(self.centroid)}


class SegmentModel:
    """A trained segmentation model. Built by `train_model` or loaded by `ModelStore`/`load_model_dir`.

    Cluster ids are 0..k-1, ordered from the most valuable centroid (recent, frequent, high spend)
    to the least; customers with zero or negative monetary get `NOT_SEGMENTED` (-1), named
    `NOT_SEGMENTED_NAME`, as they were kept out of training.
    """

    def __init__(self, pipeline: Pipeline | LazyPipeline, metadata: ModelMetadata, *,
                 predictor: Predictor | None = None) -> None:
        """`pipeline` is fitted (training, or a model saved without a predictor block), or a
        LazyPipeline given with the `predictor` read from metadata.json (nothing is loaded then).
        The metadata's predictor block is set to the predictor's arrays."""
        self._pipeline = pipeline if isinstance(pipeline, LazyPipeline) else LazyPipeline.of(pipeline)
        self._predictor = predictor if predictor is not None else Predictor.from_pipeline(self._pipeline.get())
        self._metadata = metadata.model_copy(update={"predictor": PredictorBlock.of(self._predictor)})
        self._clusters = [
            Cluster(c.id, c.name, {f: float(getattr(c.centroid, f)) for f in FEATURES})
            for c in self._metadata.clusters
        ]
        self._names = {c.id: c.name for c in self._clusters}
        ids = sorted(c.id for c in self._clusters)
        if ids != list(range(self._predictor.k)):
            raise ModelError(
                f"model metadata lists clusters {ids} but the model has {self._predictor.k} centres"
            )
        if self._metadata.k != self._predictor.k:
            raise ModelError(f"model metadata records k={self._metadata.k} but the model has "
                             f"{self._predictor.k} centres")

    @property
    def pipeline(self) -> Pipeline:
        """The fitted scikit-learn Pipeline; a saved model loads it from model.skops (and checks it) on first
        access."""
        return self._pipeline.get()

    # --- what a model is ------------------------------------------------------------------------
    @property
    def metadata(self) -> ModelMetadata:
        """metadata.json's content, typed and immutable (rename through ModelStore, not here)."""
        return self._metadata

    @property
    def version(self) -> str | None:
        """The version directory name, or None for a model not saved yet."""
        return self._metadata.version

    @property
    def k(self) -> int:
        return self._predictor.k

    @property
    def predictor(self) -> Predictor:
        """The scaler mean/scale and centres `predict` uses (read-only arrays)."""
        return self._predictor

    @property
    def clusters(self) -> list[Cluster]:
        return list(self._clusters)

    def segment_name(self, cluster_id: int) -> str:
        """The business name of a cluster id (including NOT_SEGMENTED)."""
        if int(cluster_id) == NOT_SEGMENTED:
            return NOT_SEGMENTED_NAME
        try:
            return self._names[int(cluster_id)]
        except KeyError:
            raise ModelError(f"model {self.version or '(unsaved)'} has no cluster {cluster_id} "
                             f"(clusters are 0..{self.k - 1})") from None

    def cluster_id(self, name: str) -> int:
        """The cluster id of a segment name (case-insensitive)."""
        wanted = " ".join(str(name).split()).casefold()
        for cluster_id, cluster_name in self._names.items():
            if cluster_name.casefold() == wanted:
                return cluster_id
        if wanted == NOT_SEGMENTED_NAME.casefold():
            return NOT_SEGMENTED
        known = ", ".join(repr(n) for n in [*self._names.values(), NOT_SEGMENTED_NAME])
        raise ModelError(f"model {self.version or '(unsaved)'} has no segment {name!r} (segments: {known})")

    def renamed(self, cluster_id: int, name: str) -> SegmentModel:
        """A copy with one cluster renamed (see `renamed_many`)."""
        return self.renamed_many({cluster_id: name})

    def renamed_many(self, changes: Mapping[int, str]) -> SegmentModel:
        """A copy with several clusters renamed at once (cluster id -> new name).

        The names are checked together against the final set: each non-empty, one line, not too
        long, not the reserved NOT_SEGMENTED_NAME, and all unique (case-insensitive), so clusters
        may swap names ({0: "B", 1: "A"}). An unknown id, NOT_SEGMENTED or a bad name raises
        ModelError and nothing is renamed. The copy shares this model's (lazy) pipeline."""
        wanted: dict[int, str] = {}
        for cluster_id, name in changes.items():
            self.segment_name(cluster_id)  # an unknown id: one-line error listing the valid ones
            if int(cluster_id) == NOT_SEGMENTED:
                raise ModelError(f"{NOT_SEGMENTED_NAME!r} is not a cluster and cannot be renamed")
            if int(cluster_id) in wanted:
                raise ModelError(f"cluster {int(cluster_id)} is renamed twice in one change")
            wanted[int(cluster_id)] = check_name(name, [])
        final = {**self._names, **wanted}
        for cluster_id, name in wanted.items():
            check_name(name, [n for i, n in final.items() if i != cluster_id])  # unique in the final set
        metadata = self._metadata.with_cluster_names(wanted)
        return SegmentModel(self._pipeline, metadata, predictor=self._predictor)

    # --- scoring --------------------------------------------------------------------------------
    def predict(self, X: npt.ArrayLike | pd.DataFrame) -> np.ndarray:
        """Cluster ids (int64) for rows of recency, frequency, monetary.

        Accepts a numpy (n, 3) array or a single row (3,) in that column order (the fast path), or a
        DataFrame with those columns. Rows with monetary <= 0 get NOT_SEGMENTED (-1).
        """
        if isinstance(X, np.ndarray) and X.shape == (1, 3) and X.dtype == np.float64:
            one = _one_row(X)
            if one is not None:  # a valid single row (anything else: the checks below say what is wrong)
                recency, frequency, monetary = one
                cluster = self._predictor.nearest_one(recency, frequency, monetary) if monetary > 0 else NOT_SEGMENTED
                return np.array([cluster], dtype="int64")
        values = _as_matrix(X)
        ids = np.full(len(values), NOT_SEGMENTED, dtype="int64")
        positive = values[:, 2] > 0
        if positive.all():
            return self._predictor.nearest(values)
        if positive.any():
            ids[positive] = self._predictor.nearest(values[positive])
        return ids

    def standardise(self, values: npt.ArrayLike) -> np.ndarray:
        """Values of recency, frequency, monetary (last axis) in the space the clusters live in:
        log1p, then the training z-scores. Distances to `predictor.centers` are measured here."""
        return self._predictor.standardise(np.asarray(values, dtype="float64"))

    def predict_names(self, X: npt.ArrayLike | pd.DataFrame) -> list[str]:
        """Segment names for rows of recency, frequency, monetary."""
        return [self.segment_name(i) for i in self.predict(X)]

    def assign(self, table: pd.DataFrame) -> pd.DataFrame:
        """The RFM table with `cluster` and `segment` columns added (a copy)."""
        ids = self.predict(table)
        names = np.array([*self._names_by_id(), NOT_SEGMENTED_NAME], dtype=object)
        out = table.copy()
        out["cluster"] = ids
        out["segment"] = names[ids]  # -1 indexes the last entry: NOT_SEGMENTED_NAME
        return out

    def _names_by_id(self) -> list[str]:
        return [self._names[i] for i in range(self.k)]

    def __repr__(self) -> str:
        names = ", ".join(c.name for c in self._clusters)
        return f"SegmentModel(version={self.version!r}, k={self.k}, clusters=[{names}])"


def _one_row(X: np.ndarray) -> tuple[float, float, float] | None:
    """The one (1, 3) row as Python floats when `_as_matrix` would accept it as it is, else None."""
    recency, frequency, monetary = X[0].tolist()
    if not (math.isfinite(recency) and math.isfinite(frequency) and math.isfinite(monetary)):
        return None
    if recency < 0 or frequency < 0:
        return None
    return recency, frequency, monetary


def _as_matrix(X: npt.ArrayLike | pd.DataFrame) -> np.ndarray:
    """Rows of (recency, frequency, monetary) as a float64 (n, 3) array, with one-line errors."""
    if isinstance(X, pd.DataFrame):
        missing = [f for f in FEATURES if f not in X.columns]
        if missing:
            raise DataError(f"missing column {', '.join(missing)} (expected {', '.join(FEATURES)})")
        X = X[list(FEATURES)].to_numpy(dtype="float64", na_value=np.nan)
    try:
        values = np.asarray(X, dtype="float64")
    except (TypeError, ValueError):
        raise DataError("recency, frequency and monetary must be numbers") from None
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] != 3:
        raise DataError(f"expected rows of 3 values (recency, frequency, monetary), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise DataError("recency, frequency and monetary must be finite numbers")
    if (values[:, :2] < 0).any():
        raise DataError("recency and frequency cannot be negative")
    return values
