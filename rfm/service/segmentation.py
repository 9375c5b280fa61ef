"""A model applied to a dataset: every customer's segment, whether model and data fit together, the
export list and the segment report, the same for the CLI and the dashboard.

A model is only meaningful on data like the data it was trained on: its metadata records the data
(label, content fingerprint, customers), the snapshot and the returns policy, and `apply` compares
them with the dataset's. A mismatch is not an error (applying last quarter's model to this quarter is
normal) but is always said, in one line that names what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from rfm.errors import DataError
from rfm.model import RevenueConcentration, SegmentModel, revenue_concentration, segment_profiles
from rfm.service.datasets import Dataset

EXPORT_COLUMNS: tuple[str, ...] = (
    "customer_id", "segment", "cluster", "recency", "frequency", "monetary", "r_score", "f_score", "m_score",
    "rfm_segment", "country", "snapshot_date", "model_version",
)


@dataclass(frozen=True)
class FitIssue:
    """One way a model and a dataset differ: what (`data`, `snapshot`, `returns`), and both sides."""

    aspect: str
    trained: str
    here: str

    def describe(self) -> str:
        """This side only: the warning line states the trained side once, before the differences."""
        return f"other data ({self.here})" if self.aspect == "data" else f"{self.aspect} {self.here}"


def fit_issues(model: SegmentModel, dataset: Dataset) -> tuple[FitIssue, ...]:
    """What differs between the data a model was trained on and `dataset` (empty when they fit).
    Aspects the model did not record (models saved before they were) are not compared."""
    meta = model.metadata
    issues: list[FitIssue] = []
    if meta.data_fingerprint and meta.data_fingerprint != dataset.fingerprint:
        trained = f"{meta.data_label or 'another dataset'}, {meta.rows.customers:,} customers"
        issues.append(FitIssue("data", trained, f"{dataset.label}, {len(dataset.customers):,} customers"))
    if meta.snapshot is not None and meta.snapshot != dataset.snapshot:
        issues.append(FitIssue("snapshot", meta.snapshot.isoformat(), dataset.snapshot.isoformat()))
    if meta.returns_policy and meta.returns_policy != dataset.returns.value:
        issues.append(FitIssue("returns", meta.returns_policy, dataset.returns.value))
    return tuple(issues)


def fit_warning(model: SegmentModel, issues: Sequence[FitIssue]) -> str | None:
    """One line saying on what the model was trained and what differs here; None when nothing does."""
    if not issues:
        return None
    meta = model.metadata
    trained = ", ".join(part for part in (
        meta.data_label or None,
        f"{meta.rows.customers:,} customers",
        f"snapshot {meta.snapshot.isoformat()}" if meta.snapshot else None,
        f"returns {meta.returns_policy}" if meta.returns_policy else None,
    ) if part)
    return (f"model {model.version or '(unsaved)'} was trained on {trained}; applied here to "
            + ", ".join(issue.describe() for issue in issues))


@dataclass(frozen=True)
class Segmentation:
    """A dataset's customers with the model's `cluster` and `segment`, and how well the two fit."""

    dataset: Dataset
    model: SegmentModel
    assigned: pd.DataFrame
    issues: tuple[FitIssue, ...] = field(default=())

    @property
    def warning(self) -> str | None:
        return fit_warning(self.model, self.issues)


def apply(dataset: Dataset, model: SegmentModel) -> Segmentation:
    """Every customer of `dataset` with the model's cluster and segment name, plus the fit check."""
    return Segmentation(dataset, model, model.assign(dataset.customers), fit_issues(model, dataset))


# --- the export list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    """Which customers to export: segments by name (case-insensitive) or cluster id, countries, a
    minimum monetary and a maximum recency; empty or None means no filter on that column."""

    segments: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    min_monetary: float | None = None
    max_recency: int | None = None


def filter_customers(segmentation: Segmentation, filters: ExportFilter) -> pd.DataFrame:
    """The assigned customers that pass `filters` (unknown segment names are a one-line error)."""
    assigned = segmentation.assigned
    mask = pd.Series(True, index=assigned.index)
    if filters.segments:
        from rfm.service.models import resolve_cluster

        ids = {resolve_cluster(segmentation.model, s) for s in filters.segments}
        mask &= assigned["cluster"].isin(sorted(ids))
    if filters.countries:
        if "country" not in assigned.columns:
            raise DataError(f"{segmentation.dataset.label}: the log has no country column to filter on")
        mask &= assigned["country"].isin(list(filters.countries))
    if filters.min_monetary is not None:
        mask &= assigned["monetary"] >= filters.min_monetary
    if filters.max_recency is not None:
        mask &= assigned["recency"] <= filters.max_recency
    return assigned.loc[mask]


def export_frame(segmentation: Segmentation, filters: ExportFilter | None = None) -> pd.DataFrame:
    """The customer list a marketer exports (CLI and dashboard alike): EXPORT_COLUMNS (country when the
    log has one), the snapshot and model version on every row, most valuable customers first."""
    rows = filter_customers(segmentation, filters or ExportFilter())
    columns = [c for c in EXPORT_COLUMNS if c in rows.columns]
    out = rows[columns].copy()
    out["snapshot_date"] = segmentation.dataset.snapshot.isoformat()
    out["model_version"] = segmentation.model.version or "(unsaved)"
    return out.sort_values(["monetary", "customer_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def export_csv(frame: pd.DataFrame) -> bytes:
    """The export as CSV bytes (UTF-8, header, no index): what the CLI writes and the dashboard serves."""
    return frame.to_csv(index=False).encode("utf-8")


# --- the segment report --------------------------------------------------------------------------


def segment_summary(assigned: pd.DataFrame, model: SegmentModel) -> pd.DataFrame:
    """One row a segment in the model's value order (best first): customers, revenue, their shares,
    mean and median recency, frequency and monetary."""
    profile = segment_profiles(assigned)
    order = {c.name: c.id for c in model.clusters}
    profile["_order"] = profile["segment"].map(order).fillna(len(order))
    return profile.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


@dataclass(frozen=True)
class SegmentReport:
    """Segment profiles and revenue concentration of a segmentation."""

    segmentation: Segmentation
    profiles: pd.DataFrame
    concentration: RevenueConcentration

    def as_dict(self) -> dict[str, object]:
        import json

        segmentation = self.segmentation
        return {
            "model": segmentation.model.version,
            "data": segmentation.dataset.label,
            "snapshot": segmentation.dataset.snapshot.isoformat(),
            "returns": segmentation.dataset.returns.value,
            "customers": len(segmentation.assigned),
            "warning": segmentation.warning,
            "segments": json.loads(self.profiles.to_json(orient="records")),
            "revenue_concentration": self.concentration.as_dict(),
        }


def report(segmentation: Segmentation) -> SegmentReport:
    """Profiles (model value order) and the revenue concentration of the segmentation's customers."""
    return SegmentReport(segmentation, segment_summary(segmentation.assigned, segmentation.model),
                         revenue_concentration(segmentation.dataset.customers["monetary"]))
