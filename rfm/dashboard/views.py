"""Tables the dashboard's widgets show and read back, as pure functions (no streamlit here, so they
are unit-tested without a browser): the cluster-naming table and the edits made to it, the versions
table, the export file name, the playbook edits made in the naming table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rfm.model import SegmentModel
from rfm.model.store import VersionSummary
from rfm.service.segmentation import PlaybookEntry, playbook_entry

METRIC_COLUMNS: tuple[str, ...] = ("silhouette", "davies_bouldin", "calinski_harabasz", "inertia")


NAMING_COLUMNS: tuple[str, ...] = ("cluster", "name", "description", "action", "customers", "recency", "frequency",
                                   "monetary")  # what the naming editor shows, in order (default_name kept aside)
EDITABLE_COLUMNS: tuple[str, ...] = ("name", "description", "action")


def naming_table(model: SegmentModel, playbook: Mapping[str, PlaybookEntry] | None = None) -> pd.DataFrame:
    """The cluster-naming table: id, current name, the playbook's description and recommended action,
    default name, centroid and size (editable: name, description, action)."""
    info = {c.id: c for c in model.metadata.clusters}
    rows = []
    for cluster in model.clusters:
        extra = info.get(cluster.id)
        default = extra.default_name if extra is not None else cluster.name
        entry = playbook_entry(cluster.name, playbook, default)
        rows.append({
            "cluster": cluster.id,
            "name": cluster.name,
            "description": entry.description,
            "action": entry.action,
            "default_name": default,
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


def playbook_edits(original: pd.DataFrame, edited: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """(New) segment name -> (description, action) for the rows whose name, description or action the
    user changed: an entry belongs to the name, so a renamed segment's advice is written under its new
    name."""
    before = {int(cluster): (str(name), str(description), str(action)) for cluster, name, description, action
              in zip(original["cluster"], original["name"], original["description"], original["action"], strict=True)}
    changed: dict[str, tuple[str, str]] = {}
    for cluster, raw_name, raw_description, raw_action in zip(edited["cluster"], edited["name"], edited["description"],
                                                              edited["action"], strict=True):
        name, description, action = _text(raw_name), _text(raw_description), _text(raw_action)
        if not name:
            continue  # an emptied name is refused by the rename, with its own message
        old = before.get(int(cluster))
        if old is None or (" ".join(name.split()), description, action) != (old[0], old[1], old[2]):
            changed[" ".join(name.split())] = (description, action)
    return changed


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


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


def export_file_name(segments: Sequence[str], every: Sequence[str] | None = None, version: str | None = None) -> str:
    """customers-<what>[-<version>].csv, short and safe for any file system: one or two segments by
    name, every segment as "all-segments", more as "N-segments" (a name of all the names ran to 90
    characters with "Select all")."""
    chosen = list(dict.fromkeys(segments))
    if every is not None and chosen and set(chosen) >= set(every):
        what = "all-segments"
    elif len(chosen) > 2:
        what = f"{len(chosen)}-segments"
    else:
        what = re.sub(r"[^a-z0-9]+", "-", "-".join(chosen).lower()).strip("-")[:40].strip("-") or "customers"
    suffix = f"-{re.sub(r'[^A-Za-z0-9-]+', '-', version).strip('-')}" if version else ""
    return f"customers-{what}{suffix}.csv"
