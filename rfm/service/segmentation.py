"""A model applied to a dataset: every customer's segment, whether model and data fit together, the
export list and the segment report, the same for the CLI and the dashboard.

A model is only meaningful on data like the data it was trained on: its metadata records the data
(label, content fingerprint, customers), the snapshot and the returns policy, and `apply` compares
them with the dataset's. A mismatch is not an error (applying last quarter's model to this quarter is
normal) but is always said, in one line that names what differs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rfm.errors import DataError, ModelError
from rfm.model import RevenueConcentration, SegmentModel, revenue_concentration, segment_profiles
from rfm.model.profiles import DEFAULT_PLAYBOOK, PlaybookEntry, default_playbook_entry, segment_key
from rfm.service.datasets import Dataset

if TYPE_CHECKING:
    from rfm.service.access import Principal

EXPORT_COLUMNS: tuple[str, ...] = (
    "customer_id", "segment", "cluster", "recency", "frequency", "monetary", "r_score", "f_score", "m_score",
    "rfm_segment", "country", "snapshot_date", "model_version", "segment_description", "recommended_action",
)
PLAYBOOK_FILE = "playbook.json"
MAX_PLAYBOOK_TEXT = 300


@dataclass(frozen=True)
class FitIssue:
    """One way a model and a dataset differ: what (`data`, `snapshot`, `returns`), and both sides."""

    aspect: str
    trained: str
    here: str

    def describe(self, plain: bool = False) -> str:
        """This side only: the warning line states the trained side once, before the differences.
        `plain`: the returns policy as the dashboard words it ("returns ignored"), not as the CLI's
        flag value ("returns exclude")."""
        if self.aspect == "data":
            return f"other data ({self.here})"
        if self.aspect == "returns" and plain:
            return _returns_words(self.here)
        return f"{self.aspect} {self.here}"


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


def fit_warning(model: SegmentModel, issues: Sequence[FitIssue], *, plain: bool = False) -> str | None:
    """One line saying on what the model was trained and what differs here; None when nothing does.
    `plain` words the returns policy as the dashboard does everywhere ("net of returns", "returns
    ignored"); the CLI keeps its flag's values ("returns net", "returns exclude")."""
    if not issues:
        return None
    meta = model.metadata
    returns = None
    if meta.returns_policy:
        returns = _returns_words(meta.returns_policy) if plain else f"returns {meta.returns_policy}"
    trained = ", ".join(part for part in (
        meta.data_label or None,
        f"{meta.rows.customers:,} customers",
        f"snapshot {meta.snapshot.isoformat()}" if meta.snapshot else None,
        returns,
    ) if part)
    return (f"model {model.version or '(unsaved)'} was trained on {trained}; applied here to "
            + ", ".join(issue.describe(plain) for issue in issues))


def _returns_words(policy: str) -> str:
    """A returns policy value in the dashboard's one wording (the value itself when unknown)."""
    from rfm.data.query import ReturnsPolicy

    try:
        return ReturnsPolicy(policy).label
    except ValueError:
        return f"returns {policy}"


@dataclass(frozen=True)
class Segmentation:
    """A dataset's customers with the model's `cluster` and `segment`, and how well the two fit."""

    dataset: Dataset
    model: SegmentModel
    assigned: pd.DataFrame
    issues: tuple[FitIssue, ...] = field(default=())
    playbook: Mapping[str, PlaybookEntry] = field(default_factory=dict)  # analysts' entries (load_playbook)

    @property
    def warning(self) -> str | None:
        return fit_warning(self.model, self.issues)


def apply(dataset: Dataset, model: SegmentModel, playbook: Mapping[str, PlaybookEntry] | None = None) -> Segmentation:
    """Every customer of `dataset` with the model's cluster and segment name, plus the fit check;
    `playbook` (from `load_playbook`) gives the export its analysts' descriptions and actions."""
    return Segmentation(dataset, model, model.assign(dataset.customers), fit_issues(model, dataset),
                        dict(playbook or {}))


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
    defaults = default_names(segmentation.model)
    entries = {name: playbook_entry(name, segmentation.playbook, defaults.get(name))
               for name in out["segment"].unique()}
    out["segment_description"] = out["segment"].map({n: e.description for n, e in entries.items()})
    out["recommended_action"] = out["segment"].map({n: e.action for n, e in entries.items()})
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


# --- the playbook --------------------------------------------------------------------------------
# Each segment name carries a short description and a recommended action: built-in defaults for the
# known names (rfm.model.profiles.DEFAULT_PLAYBOOK) and the analysts' own entries, kept in
# <models_dir>/playbook.json keyed by `segment_key`. An entry belongs to a name, not to a version, so
# it holds for every version that uses the name (as a segment's colour does), and the signed model
# files are never rewritten for advice.


def playbook_entry(name: str, playbook: Mapping[str, PlaybookEntry] | None = None,
                   default_name: str | None = None) -> PlaybookEntry:
    """The entry of a segment name: an analyst's, else the built-in one of the name, else (a renamed
    cluster) the built-in one of the cluster's default name, else a neutral fallback."""
    found = (playbook or {}).get(segment_key(name))
    if found is not None:
        return found
    if segment_key(name) in DEFAULT_PLAYBOOK or not default_name:
        return default_playbook_entry(name)
    return default_playbook_entry(default_name)


def default_names(model: SegmentModel) -> dict[str, str]:
    """Segment name -> the cluster's default name (what the model named it before any rename)."""
    return {c.name: c.default_name for c in model.metadata.clusters}


def playbook_path(models_dir: str | os.PathLike[str]) -> Path:
    return Path(models_dir) / PLAYBOOK_FILE


def load_playbook(models_dir: str | os.PathLike[str]) -> dict[str, PlaybookEntry]:
    """The analysts' entries (segment key -> entry); none when the file does not exist. A malformed
    file is a one-line ModelError naming it."""
    path = playbook_path(models_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot be read as the segment playbook: {exc}") from None
    entries = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ModelError(f"{path}: expected {{\"segments\": {{name: {{description, action}}}}}}")
    out: dict[str, PlaybookEntry] = {}
    for key, entry in entries.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("description"), str)
                and isinstance(entry.get("action"), str)):
            raise ModelError(f"{path}: segment {key!r}: expected a description and an action (text)")
        out[segment_key(key)] = PlaybookEntry(entry["description"], entry["action"])
    return out


def playbook_changes(models_dir: str | os.PathLike[str],
                     edits: Mapping[str, tuple[str, str]]) -> dict[str, PlaybookEntry]:
    """The entries that `edits` (segment name -> (description, action)) actually change, checked:
    text is trimmed, neither may be empty or longer than MAX_PLAYBOOK_TEXT characters."""
    current = load_playbook(models_dir)
    changed: dict[str, PlaybookEntry] = {}
    for name, (description, action) in edits.items():
        entry = PlaybookEntry(" ".join(str(description).split()), " ".join(str(action).split()))
        for what, text in (("description", entry.description), ("action", entry.action)):
            if not text:
                raise ModelError(f"segment {name!r}: the {what} cannot be empty")
            if len(text) > MAX_PLAYBOOK_TEXT:
                raise ModelError(f"segment {name!r}: the {what} is longer than {MAX_PLAYBOOK_TEXT} characters")
        if entry != playbook_entry(name, current):
            changed[name] = entry
    return changed


def save_playbook(principal: Principal, models_dir: str | os.PathLike[str], edits: Mapping[str, tuple[str, str]],
                  *, audit_log: str | os.PathLike[str]) -> dict[str, PlaybookEntry]:
    """Write analysts' playbook entries (segment name -> (description, action)); returns the entries
    changed. Analysts only (the same right as renaming, checked in rfm.service.access's way: the role
    first, the audit log opened before the file is replaced, one audit line with the changes)."""
    from rfm.service import access

    access.require(principal, access.Action.RENAME)
    changed = playbook_changes(models_dir, edits)
    if not changed:
        return {}
    with access.recorded(audit_log) as write:  # the log is opened first: no unrecorded edit
        path = playbook_path(models_dir)
        entries = load_playbook(models_dir)
        entries.update({segment_key(name): entry for name, entry in changed.items()})
        names = {segment_key(name): name for name in changed}
        data = {"segments": {names.get(key, key): {"description": e.description, "action": e.action}
                             for key, e in sorted(entries.items())}}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        write(access.audit_record(
            principal, "playbook", segments={name: {"description": e.description, "action": e.action}
                                             for name, e in changed.items()}))
    return changed
