"""`ModelMetadata`: metadata.json as typed, immutable pydantic models.

One class a JSON object of the file (clusters, row counts, metrics, the predictor block). Reading
(`ModelMetadata.from_json_dict`) is strict: a value of the wrong type (a string for a number, a
boolean for an integer) is refused with ONE line naming the file and the field, e.g.
`models/V/metadata.json: clusters.0.name: field required`; the predictor block gets the checks of
`Predictor.from_metadata` (shapes, finite numbers, scale > 0) before anything is converted. Writing
(`to_json_dict`) gives back exactly the layout the file has always had: the same keys in the same
order, `snapshot` as "YYYY-MM-DD", floats untouched (Python's json writes their shortest round-trip
repr, so they read back bit for bit). Keys a file may lack (`data_label`, `predictor`, a cluster's
`customers`) are left out when unset, so an old file is rewritten with its own keys; keys this code
does not know are kept (extra="allow"), so an older rfm renaming a newer model loses nothing.

The models are frozen; the dicts and lists inside them (`sweep`, `libraries`, `features`...) are
shared by a model and its renamed copies and must not be mutated: change metadata with
`model_copy(update=...)` or `with_cluster_names`.

This module imports pydantic, numpy (through rfm.model.predictor) and rfm.errors only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rfm.errors import ModelError, short_repr
from rfm.model.predictor import Predictor

METADATA_FORMAT = 1  # the "format" written by this code; files of format 1 always load

# Keys written only when they hold a value: older files do not have them (see the module docstring).
_OPTIONAL_KEYS = ("data_label", "sha256", "predictor")


class _Block(BaseModel):
    """A JSON object of metadata.json: immutable, strictly typed, unknown keys kept."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)


class Centroid(_Block):
    """A cluster centre in original units (a geometric-style mean of the cluster's customers)."""

    recency: float
    frequency: float
    monetary: float


class ClusterInfo(_Block):
    """One cluster: its id (0 = most valuable), business name, default name, centroid and size."""

    id: int
    name: str
    default_name: str
    centroid: Centroid
    customers: int | None = None  # training customers in the cluster (absent in hand-made files)


class RowCounts(_Block):
    """The RFM table the model was trained on: customers, trained (monetary > 0) and kept out."""

    customers: int
    trained_customers: int
    excluded_customers: int
    excluded_revenue: float  # their net monetary: zero or negative


class ModelMetrics(_Block):
    """The model's own quality metrics (computed like the sweep's)."""

    inertia: float
    silhouette: float
    silhouette_sample: int  # customers the silhouette was computed on
    davies_bouldin: float
    calinski_harabasz: float
    smallest_cluster_share: float


class KMeansConfig(_Block):
    """How KMeans was run."""

    n_init: int
    init: str
    algorithm: str


class PredictorBlock(_Block):
    """The arrays scoring needs, in log1p space: scaler mean and scale (3 each), centres (k x 3, row i
    is cluster i). Checked like `Predictor.from_metadata` (one-line reason) before conversion."""

    mean: list[float]
    scale: list[float]
    centers: list[list[float]]

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: object) -> object:
        if isinstance(data, PredictorBlock):
            return data
        Predictor.from_metadata(data)  # raises ValueError("scale must be positive, got ...") etc.
        return data

    @classmethod
    def of(cls, predictor: Predictor) -> PredictorBlock:
        """The block of a predictor (lists of Python floats: json round-trips them exactly)."""
        return cls.model_validate(predictor.as_metadata())

    def to_predictor(self) -> Predictor:
        """The predictor these arrays describe (bit for bit)."""
        return Predictor.from_metadata({"mean": self.mean, "scale": self.scale, "centers": self.centers})


class ModelMetadata(_Block):
    """metadata.json of a model version (see docs/ARCHITECTURE.md, "On disk")."""

    format: int
    version: str | None  # None until saved
    created: str  # UTC, "YYYY-MM-DDTHH:MM:SSZ"
    k: int
    seed: int
    features: list[str]
    transform: str
    pipeline: dict[str, str]  # step name -> estimator class name
    kmeans: KMeansConfig
    snapshot: Annotated[date | None, Field(strict=False)]  # read from "YYYY-MM-DD"
    returns_policy: str | None
    data_fingerprint: str | None
    data_label: str | None = None  # what it was trained on: "demo data", "online_retail.parquet", "athena:db.table"
    rows: RowCounts
    metrics: ModelMetrics
    sweep: dict[str, object] | None  # SweepResult.as_dict() of the sweep the model came with
    clusters: list[ClusterInfo]
    libraries: dict[str, str]  # library -> version the pipeline was pickled with
    sha256: str | None = None  # of model.joblib in old versions: read, kept, trusted for nothing (manifest.json is)
    predictor: PredictorBlock | None = None  # absent in models saved before predictor blocks

    @classmethod
    def from_json_dict(cls, data: object, *, where: Path) -> ModelMetadata:
        """Validate metadata.json's parsed content; `where` (the file) starts every error message."""
        if not isinstance(data, dict):
            raise ModelError(f"{where}: not a model's metadata (expected a JSON object, got {type(data).__name__})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ModelError(f"{where}: {validation_message(exc)}") from None

    def to_json_dict(self) -> dict[str, object]:
        """The content of metadata.json: the layout the file has always had (see the module docstring)."""
        data = self.model_dump(mode="json")
        for key in _OPTIONAL_KEYS:
            if data.get(key, 0) is None:
                del data[key]
        for cluster in data["clusters"]:
            if cluster.get("customers", 0) is None:
                del cluster["customers"]
        return data

    def cluster_names(self) -> dict[int, str]:
        """Cluster id -> business name."""
        return {c.id: c.name for c in self.clusters}

    def with_cluster_names(self, names: Mapping[int, str]) -> ModelMetadata:
        """A copy with the given clusters renamed (names are taken as they are: check them first)."""
        clusters = [c.model_copy(update={"name": names[c.id]}) if c.id in names else c for c in self.clusters]
        return self.model_copy(update={"clusters": clusters})


class VersionSummary(BaseModel):
    """One saved version as `ModelStore.summaries` lists it (read from metadata.json, nothing loaded).

    A version whose metadata cannot be read has `error` set and only `version` and `current` besides.
    `as_dict()` gives a JSON-ready dict.
    """

    model_config = ConfigDict(frozen=True)

    version: str
    current: bool
    created: str | None = None
    k: int | None = None
    snapshot: date | None = None
    customers: int | None = None  # trained customers
    segments: list[str] = Field(default_factory=list)  # cluster names, by id
    data_label: str | None = None
    metrics: ModelMetrics | None = None
    error: str | None = None  # one line: why metadata.json cannot be read

    @classmethod
    def of(cls, metadata: ModelMetadata, *, version: str, current: bool) -> VersionSummary:
        return cls(
            version=version,
            current=current,
            created=metadata.created,
            k=metadata.k,
            snapshot=metadata.snapshot,
            customers=metadata.rows.trained_customers,
            segments=[c.name for c in metadata.clusters],
            data_label=metadata.data_label,
            metrics=metadata.metrics,
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict (snapshot as "YYYY-MM-DD"), e.g. for `rfm models list --json`."""
        return self.model_dump(mode="json")


def validation_message(exc: ValidationError) -> str:
    """One line for a pydantic error: the first problem's field path and reason (and how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "value_error":  # raised by a validator: the message is ours
        message = message.removeprefix("Value error, ")
    elif first["type"] != "missing":
        message = f"{message} (got {short_repr(first['input'])})"
    message = message[:1].lower() + message[1:]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {message}{more}".replace("\n", " ")
