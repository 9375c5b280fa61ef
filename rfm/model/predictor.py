"""`Predictor`: the arrays scoring needs, and their "predictor" block in metadata.json.

A fitted pipeline predicts with three arrays only: the StandardScaler's mean and scale (of log1p
recency, frequency, monetary) and the KMeans centres (in that standardised space). A saved model
keeps a copy of them in metadata.json, so loading a model and scoring never load the pipeline
nor imports scikit-learn (about 1.4 s, most of a cold start). Python's json writes a float64 as its
shortest round-trip repr, so the arrays read back are bit-for-bit those of the pipeline; when the
pipeline is loaded after all (model.skops), it is checked to hold exactly these arrays.

This module imports numpy (and rfm.errors) only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from rfm.errors import short_repr

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

N_FEATURES = 3  # recency, frequency, monetary


class PredictorArrays(TypedDict):
    """metadata.json's "predictor" block: the arrays as lists of Python floats."""

    mean: list[float]
    scale: list[float]
    centers: list[list[float]]


@dataclass(frozen=True, eq=False)
class Predictor:
    """Scaler mean/scale and KMeans centres as read-only float64 arrays; `nearest` is `pipeline.predict`."""

    mean: np.ndarray  # (3,)
    scale: np.ndarray  # (3,), all > 0
    centers: np.ndarray  # (k, 3), standardised units
    _center_sq: np.ndarray = field(init=False, repr=False, compare=False)  # (k,), set by __post_init__

    _as_floats: tuple[tuple[float, ...], tuple[float, ...], tuple[tuple[float, ...], ...], tuple[float, ...]] = field(
        init=False, repr=False, compare=False)  # the arrays as Python floats, for `nearest_one`

    def __post_init__(self) -> None:
        for name in ("mean", "scale", "centers"):
            array = np.ascontiguousarray(getattr(self, name), dtype="float64")
            array.setflags(write=False)  # shared by a model and its renamed copies
            object.__setattr__(self, name, array)
        center_sq = (self.centers**2).sum(axis=1)
        center_sq.setflags(write=False)
        object.__setattr__(self, "_center_sq", center_sq)
        object.__setattr__(self, "_as_floats", (tuple(self.mean.tolist()), tuple(self.scale.tolist()),
                                                tuple(tuple(row) for row in self.centers.tolist()),
                                                tuple(center_sq.tolist())))

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> Predictor:
        """The arrays of a fitted log1p -> scale -> kmeans pipeline."""
        scale = pipeline.named_steps["scale"]
        return cls(scale.mean_, scale.scale_, pipeline.named_steps["kmeans"].cluster_centers_)

    @classmethod
    def from_metadata(cls, block: object) -> Predictor:
        """Parse metadata.json's predictor block; a ValueError says what is wrong with it."""
        if not isinstance(block, dict):
            raise ValueError("expected an object with mean, scale and centers")
        missing = [key for key in ("mean", "scale", "centers") if key not in block]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        mean = _vector(block["mean"], "mean")
        scale = _vector(block["scale"], "scale")
        if not all(value > 0 for value in scale):
            raise ValueError(f"scale must be positive, got {scale}")
        centers = block["centers"]
        if not isinstance(centers, list) or not centers:
            raise ValueError("centers must be a non-empty list of rows")
        rows = [_vector(row, f"centers[{i}]") for i, row in enumerate(centers)]
        return cls(np.array(mean), np.array(scale), np.array(rows))

    def as_metadata(self) -> PredictorArrays:
        """The block for metadata.json (lists of Python floats: json round-trips them exactly)."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "centers": self.centers.tolist()}

    @property
    def k(self) -> int:
        return len(self.centers)

    def standardise(self, values: np.ndarray) -> np.ndarray:
        """Rows of recency, frequency, monetary in the model's space: log1p, then z-scores."""
        return (np.log1p(values) - self.mean) / self.scale

    def nearest(self, values: np.ndarray) -> np.ndarray:
        """The index of the nearest centre for each (n, 3) row, as int64 (what KMeans.predict gives)."""
        z = self.standardise(values)
        # argmin ||z - c||^2 = argmin (||c||^2 - 2 z.c); same arithmetic order as KMeans in float64.
        distances = self._center_sq[None, :] - 2.0 * (z @ self.centers.T)
        return np.argmin(distances, axis=1).astype("int64")

    def nearest_one(self, recency: float, frequency: float, monetary: float) -> int:
        """`nearest` for one customer in plain Python floats: a real-time request scores one row, and
        numpy's per-call overhead is most of that work (~25 us against ~3 us). The same steps in the
        same order; where the two nearest centres are so close that rounding could order them either
        way, `nearest` itself decides, so the answer is always `nearest`'s."""
        mean, scale, centers, center_sq = self._as_floats
        z = [(math.log1p(v) - m) / s for v, m, s in zip((recency, frequency, monetary), mean, scale, strict=True)]
        distances = [sq - 2.0 * (z[0] * c[0] + z[1] * c[1] + z[2] * c[2])
                     for sq, c in zip(center_sq, centers, strict=True)]
        best = min(range(len(distances)), key=distances.__getitem__)
        runner_up = min((d for i, d in enumerate(distances) if i != best), default=math.inf)
        if runner_up - distances[best] <= 1e-9 * (1.0 + abs(distances[best]) + abs(runner_up)):
            return int(self.nearest(np.array([[recency, frequency, monetary]], dtype="float64"))[0])
        return best

    def __eq__(self, other: object) -> bool:
        """Exact equality of every array (no tolerance: the copies must be bit-for-bit the pipeline's)."""
        if not isinstance(other, Predictor):
            return NotImplemented
        return all(np.array_equal(getattr(self, n), getattr(other, n)) for n in ("mean", "scale", "centers"))

    # Unhashable, as a class with __eq__ is anyway; typeshed declares __hash__ a method, not None.
    __hash__ = None  # type: ignore[assignment]


def _vector(value: object, name: str) -> list[float]:
    """A list of N_FEATURES finite JSON numbers (not booleans, not strings)."""
    if not isinstance(value, list) or len(value) != N_FEATURES:
        raise ValueError(f"{name} must be a list of {N_FEATURES} numbers, got {short_repr(value)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must hold numbers, got {short_repr(value)}")
    try:
        floats = [float(v) for v in value]
    except OverflowError:  # an integer beyond float range
        floats = [math.inf]
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"{name} must hold finite numbers, got {short_repr(value)}")
    return floats
