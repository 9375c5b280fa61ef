"""Tables the dashboard's widgets show and read back, as pure functions (no streamlit here, so they
are unit-tested without a browser): the cluster-naming table and the edits made to it, the versions
table, the export file name."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rfm.model import SegmentModel
from rfm.model.store import VersionSummary

METRIC_COLUMNS: tuple[str, ...] = ("silhouette", "davies_bouldin", "calinski_harabasz", "inertia")


def naming_table(model: SegmentModel) -> pd.DataFrame:
    """The cluster-naming table: id, current name, default name, centroid and size (editable: name)."""
    info = {c.id: c for c in model.metadata.clusters}
    rows = []
    for cluster in model.clusters:
        extra = info.get(cluster.id)
        rows.append({
            "cluster": cluster.id,
            "name": cluster.name,
            "default_name": extra.default_name if extra is not None else cluster.name,
            "recency": round(cluster.centroid["recency"], 1),
            "frequency": round(cluster.centroid["frequency"], 1),
            "monetary": round(cluster.centroid["monetary"], 2),
            "customers": extra.customers if extra is not None else None,
        })
    return pd.DataFrame(rows)


def renames(original: pd.DataFrame, edited: pd.DataFrame) -> dict[int, str]:
    """Cluster id -> new name for the rows whose name the user changed in the naming table."""
    before = dict(zip(original["cluster"].astype(int), original["name"].astype(str), strict=True))
    changed: dict[int, str] = {}
    for cluster, name in zip(edited["cluster"].astype(int), edited["name"], strict=True):
        text = "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name)
        if " ".join(text.split()) != before.get(cluster):
            changed[int(cluster)] = text
    return changed


def versions_frame(summaries: Sequence[VersionSummary]) -> pd.DataFrame:
    """Saved versions (newest first) with their metrics, for the versions table."""
    rows = []
    for summary in summaries:
        row: dict[str, object] = {
            "version": summary.version,
            "promoted": summary.current,
            "k": summary.k,
            "created": summary.created,
            "snapshot": summary.snapshot,
            "customers": summary.customers,
            "segments": summary.error or ", ".join(summary.segments),
        }
        for name in METRIC_COLUMNS:
            row[name] = float(getattr(summary.metrics, name)) if summary.metrics is not None else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.iloc[::-1].reset_index(drop=True) if len(frame) else frame


def export_file_name(segments: Sequence[str]) -> str:
    """customers-<segments>.csv, kept short and safe for any file system."""
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(segments).lower()).strip("-")[:60] or "customers"
    return f"customers-{slug}.csv"
