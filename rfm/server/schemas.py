"""Typed descriptions of the server's responses, for the OpenAPI document (requests: rfm.serving.records)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rfm.serving.records import CustomerRecord


class ScoreResponse(BaseModel):
    """One customer's segment: the format published for this product."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "cluster": 1, "segment": "Loyal Customers", "input_data": {"recency": 15, "frequency": 12, "monetary": 540},
        "model_version": "20261127-084202-k4"}})

    cluster: int
    segment: str
    input_data: CustomerRecord
    model_version: str


class BatchResponse(BaseModel):
    """The scores of `instances`, in the same order."""

    model_config = ConfigDict(extra="forbid")

    predictions: list[ScoreResponse]


class ClusterInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    centroid: dict[str, float]


class NotSegmentedInfo(BaseModel):
    """Customers with zero or negative monetary: no cluster, no centroid."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str


class ModelInfo(BaseModel):
    """What GET /model describes: the loaded version, its segments and centroids (original units)."""

    model_config = ConfigDict(extra="forbid")

    version: str
    k: int
    features: list[str]
    segments: list[str]
    clusters: list[ClusterInfo]
    not_segmented: NotSegmentedInfo


class ErrorResponse(BaseModel):
    """Every 4xx/5xx: one line naming the record and field when the input is at fault."""

    model_config = ConfigDict(extra="forbid")

    detail: str


COMPONENTS: tuple[type[BaseModel], ...] = (
    CustomerRecord, ScoreResponse, BatchResponse, ClusterInfo, NotSegmentedInfo, ModelInfo, ErrorResponse,
)
