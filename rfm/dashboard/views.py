"""What the dashboard shows, computed without Streamlit: source -> RFM table -> model assignment.

The pages only lay out widgets; everything they display comes from these pure functions, so it is
unit-testable and the same figures can be produced from a notebook. Nothing here imports streamlit
(the caching layer lives in `app_state.py` next to `streamlit_app.py`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfm.data import columns as C
from rfm.data.engine import connect, quote_identifier
from rfm.data.query import RFM_COLUMNS, cleaned_lines_sql
from rfm.data.segments import SEGMENT_DESCRIPTIONS, rf_grid
from rfm.data.sources import SourceOptions, expand_paths, fingerprint, load_source, read_head
from rfm.data.table import RfmOptions, RfmResult, rfm_from_view
from rfm.errors import DataError, RfmError

# The seed's example customer (README, model server docs): scored on the Score page by default.
EXAMPLE_CUSTOMER: dict[str, float] = {"recency": 15, "frequency": 12, "monetary": 540.0}
DEMO_ROWS = 200_000
DEMO_SEED = 7
UPLOAD_EXTENSIONS: tuple[str, ...] = ("csv", "gz", "tsv", "txt", "xlsx", "xls", "xlsm", "parquet", "pq")
EXPORT_COLUMNS: tuple[str, ...] = ("customer_id", "segment", "cluster", "recency", "frequency", "monetary",
                                   "r_score", "f_score", "m_score", "rfm_segment", "country")

# Descriptions of the model's default names (k=4); other names fall back to the R x F grid's texts.
MODEL_SEGMENT_DESCRIPTIONS: dict[str, str] = {
    "champions": SEGMENT_DESCRIPTIONS["champions"],
    "loyal customers": SEGMENT_DESCRIPTIONS["loyal"],
    "at-risk": SEGMENT_DESCRIPTIONS["at risk"],
    "hibernating": SEGMENT_DESCRIPTIONS["hibernating"],
    "no net revenue": "Returns cancel their purchases: no net spend to segment on.",
}


# --- data sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One customer a row (the RFM columns plus `country` when the log has one) and its provenance."""

    customers: pd.DataFrame
    snapshot: date
    options: RfmOptions
    fingerprint: str
    label: str
    first_date: date | None = None
    last_date: date | None = None

    def rfm_result(self) -> RfmResult:
        """The RfmResult a model is trained on (so its metadata records snapshot, policy, fingerprint)."""
        return RfmResult(table=self.customers[list(RFM_COLUMNS)], snapshot=self.snapshot, options=self.options,
                         fingerprint=self.fingerprint)

    @property
    def has_country(self) -> bool:
        return "country" in self.customers.columns and self.customers["country"].notna().any()


def ensure_demo(path: str | os.PathLike[str], rows: int = DEMO_ROWS, seed: int = DEMO_SEED) -> Path:
    """The demo log at `path`, generated on first use (a fresh clone has no retailer data)."""
    from rfm.data.demo import write_demo

    out = Path(path)
    if not out.is_file():
        write_demo(out, rows=rows, seed=seed)
    return out


def file_fingerprint(paths: Sequence[str], options: SourceOptions) -> str:
    """Cheap cache key of files (paths, sizes, mtimes, read options): raises DataError for a bad path."""
    return fingerprint(expand_paths(paths), options)


def load_files(paths: Sequence[str], source_options: SourceOptions | None, options: RfmOptions,
               label: str | None = None) -> Dataset:
    """Read a log (CSV, Excel, Parquet) and compute its RFM table, each customer's country and the
    log's date range, all on one DuckDB connection."""
    con = connect()
    try:
        source = load_source(con, paths, source_options)
        if not source.cleaned:  # clean once, then both aggregations read the cleaned lines
            con.execute(f"CREATE TEMP TABLE cleaned_lines AS {cleaned_lines_sql(quote_identifier(source.view))}")
            source = replace(source, view="cleaned_lines", cleaned=True)
        result = rfm_from_view(con, source, options)
        snapshot = result.snapshot.isoformat()
        extra = con.execute(
            f"SELECT customer_id, mode(country) AS country, min(invoice_date) AS first_date, "
            f"max(invoice_date) AS last_date FROM {quote_identifier(source.view)} "
            f"WHERE CAST(invoice_date AS DATE) < DATE '{snapshot}' GROUP BY customer_id"
        ).df()
    finally:
        con.close()
    table = result.table
    extra["customer_id"] = extra["customer_id"].astype(str)
    merged = table.merge(extra[["customer_id", "country"]], on="customer_id", how="left")
    if source.mapping.country is None:
        merged = merged.drop(columns="country")
    first = pd.Timestamp(extra["first_date"].min()).date() if len(extra) else None
    last = pd.Timestamp(extra["last_date"].max()).date() if len(extra) else None
    return Dataset(customers=merged, snapshot=result.snapshot, options=options, fingerprint=result.fingerprint,
                   label=label or ", ".join(os.path.basename(p) for p in paths), first_date=first, last_date=last)


def load_athena(config: Any, options: RfmOptions) -> Dataset:
    """The RFM table computed by Athena (only the per-customer table comes back: no country)."""
    from rfm.cloud.athena import compute_rfm_athena

    result = compute_rfm_athena(config, options)
    return Dataset(customers=result.table, snapshot=result.snapshot, options=options,
                   fingerprint=result.fingerprint, label=config.describe())


def save_upload(name: str, data: bytes, directory: str | os.PathLike[str]) -> Path:
    """Keep an uploaded file under a content-hash name, so the same upload maps to the same path and
    fingerprint (a cache hit) and two different uploads never collide."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(name)).strip("._") or "upload.csv"
    digest = hashlib.sha256(data).hexdigest()[:16]
    out = Path(directory) / f"{digest}-{safe}"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    return out


# --- column mapping step -------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingCheck:
    """Whether a file's headers are recognised; if not, what the user must map and a preview."""

    columns: list[str]
    head: pd.DataFrame
    error: str | None
    guess: dict[str, str | None] = field(default_factory=dict)

    @property
    def needs_mapping(self) -> bool:
        return self.error is not None


def check_mapping(path: str, mapping: Mapping[str, str] | None = None, rows: int = 5) -> MappingCheck:
    """Read the first rows of `path` and try to resolve its headers (with the user's mapping)."""
    head = read_head(path, rows)
    columns = [str(c) for c in head.columns]
    guess = guess_mapping(columns)
    try:
        C.resolve_mapping(columns, mapping, where=os.path.basename(path))
    except DataError as exc:
        return MappingCheck(columns, head, str(exc), guess)
    return MappingCheck(columns, head, None, guess)


def guess_mapping(columns: Iterable[str]) -> dict[str, str | None]:
    """The recognised header for each canonical column (None where nothing matched): the mapping
    form's defaults."""
    columns = list(columns)
    by_key = {C.normalise_header(c): c for c in reversed(columns)}
    guess: dict[str, str | None] = {}
    for canonical in C.CANONICAL_COLUMNS:
        keys = (C.normalise_header(canonical), *C.KNOWN_HEADERS[canonical])
        guess[canonical] = next((by_key[k] for k in keys if k in by_key), None)
    return guess


def mapping_from_choices(choices: Mapping[str, str | None]) -> dict[str, str]:
    """The user's choices in the mapping form, without the empty ones."""
    return {canonical: source for canonical, source in choices.items() if source}


# --- per-customer views --------------------------------------------------------------------------


def assign_segments(customers: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Customers with the model's `cluster` and `segment` columns."""
    return model.assign(customers)


def kpis(dataset: Dataset) -> dict[str, Any]:
    """The Overview's headline figures: revenue is net monetary, orders are purchase invoices."""
    table = dataset.customers
    return {
        "customers": len(table),
        "revenue": float(table["monetary"].sum()),
        "orders": int(table["frequency"].sum()),
        "first_date": dataset.first_date,
        "last_date": dataset.last_date,
        "snapshot": dataset.snapshot,
    }


def period_label(first: date, last: date) -> str:
    """How long a log covers, in the unit a marketer reads it: days under two months, else months."""
    days = (last - first).days + 1
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{round(days / 30.4375)} months"


def segment_summary(assigned: pd.DataFrame, model: Any) -> pd.DataFrame:
    """One row a segment in the model's value order (best first): customers, revenue and shares."""
    from rfm.model import segment_profiles

    profile = segment_profiles(assigned)
    order = {c.name: c.id for c in model.clusters}
    profile["_order"] = profile["segment"].map(order).fillna(len(order))
    return profile.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def rf_heatmap_data(customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean monetary, customers) per R score (rows 5..1) x F score (columns 1..5); empty cells NaN / 0."""
    grouped = customers.groupby(["r_score", "f_score"])["monetary"]
    index = pd.Index([5, 4, 3, 2, 1], name="r_score")
    cols = pd.Index([1, 2, 3, 4, 5], name="f_score")
    mean = grouped.mean().unstack().reindex(index=index, columns=cols)
    count = grouped.size().unstack().reindex(index=index, columns=cols).fillna(0).astype("int64")
    return mean, count


def grid_frame(customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The 25 cells of the R x F grid with their segment (and the customers in each, given a table)."""
    rows = [{"r_score": r, "f_score": f, "segment": name} for (r, f), name in sorted(rf_grid().items())]
    frame = pd.DataFrame(rows)
    if customers is not None:
        counts = customers.groupby(["r_score", "f_score"]).size().rename("customers").reset_index()
        frame = frame.merge(counts, on=["r_score", "f_score"], how="left")
        frame["customers"] = frame["customers"].fillna(0).astype("int64")
    return frame


def filter_customers(
    assigned: pd.DataFrame,
    segments: Sequence[str] | None = None,
    countries: Sequence[str] | None = None,
    min_monetary: float | None = None,
    max_recency: int | None = None,
) -> pd.DataFrame:
    """Customers in the chosen segments and countries (None or empty: no filter on that column)."""
    mask = pd.Series(True, index=assigned.index)
    if segments:
        mask &= assigned["segment"].isin(list(segments))
    if countries and "country" in assigned.columns:
        mask &= assigned["country"].isin(list(countries))
    if min_monetary is not None:
        mask &= assigned["monetary"] >= min_monetary
    if max_recency is not None:
        mask &= assigned["recency"] <= max_recency
    return assigned.loc[mask]


def export_frame(assigned: pd.DataFrame) -> pd.DataFrame:
    """The columns of the exported customer list, most valuable customers first."""
    cols = [c for c in EXPORT_COLUMNS if c in assigned.columns]
    return assigned[cols].sort_values(["monetary", "customer_id"], ascending=[False, True]).reset_index(drop=True)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def countries(customers: pd.DataFrame) -> list[str]:
    """Countries by number of customers, largest first (for the filters)."""
    if "country" not in customers.columns:
        return []
    return customers["country"].dropna().value_counts().index.astype(str).tolist()


# --- model views ---------------------------------------------------------------------------------


def naming_table(model: Any) -> pd.DataFrame:
    """The cluster-naming table: id, current name, default name, centroid and size (editable: name)."""
    meta = {int(c["id"]): c for c in model.metadata.get("clusters", [])}
    rows = []
    for cluster in model.clusters:
        extra = meta.get(cluster.id, {})
        rows.append({
            "cluster": cluster.id,
            "name": cluster.name,
            "default_name": extra.get("default_name", cluster.name),
            "recency": round(cluster.centroid["recency"], 1),
            "frequency": round(cluster.centroid["frequency"], 1),
            "monetary": round(cluster.centroid["monetary"], 2),
            "customers": extra.get("customers"),
        })
    return pd.DataFrame(rows)


def renames(original: pd.DataFrame, edited: pd.DataFrame) -> dict[int, str]:
    """Cluster id -> new name for the rows whose name the user changed in the naming table."""
    before = dict(zip(original["cluster"].astype(int), original["name"].astype(str), strict=True))
    changed: dict[int, str] = {}
    for cluster, name in zip(edited["cluster"].astype(int), edited["name"], strict=True):
        text = "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name)
        if " ".join(text.split()) != before.get(cluster):
            changed[cluster] = text
    return changed


def apply_renames(model: Any, changes: Mapping[int, str]) -> Any:
    """The model with every change applied in memory (checked together: names stay unique)."""
    # Two clusters may swap names: go through placeholder names so no intermediate state clashes.
    for i, cluster in enumerate(changes):
        model = model.renamed(cluster, f"__renaming_{i}__")
    for cluster, name in changes.items():
        model = model.renamed(cluster, name)
    return model


def save_renames(store: Any, version: str, changes: Mapping[int, str]) -> Any:
    """Persist renames of a saved version; all names are checked first, so a bad one changes nothing."""
    model = apply_renames(store.load(version), changes)
    final = {c.id: c.name for c in model.clusters}
    for i, cluster in enumerate(changes):
        store.rename_cluster(version, cluster, f"__renaming_{i}__")
    for cluster in changes:
        model = store.rename_cluster(version, cluster, final[cluster])
    return model


def versions_frame(store: Any) -> pd.DataFrame:
    """Saved versions (newest first) with their metrics, read from metadata.json without unpickling."""
    from rfm.model.store import read_metadata

    rows = []
    for summary in store.summaries():
        row: dict[str, Any] = {
            "version": summary["version"],
            "promoted": bool(summary.get("current")),
            "k": summary.get("k"),
            "created": summary.get("created"),
            "snapshot": summary.get("snapshot"),
            "customers": summary.get("customers"),
            "segments": ", ".join(str(s) for s in summary.get("segments") or []),
        }
        if "error" in summary:
            row["segments"] = summary["error"]
        else:
            try:
                metrics = read_metadata(store.root / summary["version"]).get("metrics") or {}
            except RfmError:
                metrics = {}
            for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "inertia"):
                value = metrics.get(name)
                row[name] = float(value) if isinstance(value, int | float) else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.iloc[::-1].reset_index(drop=True) if len(frame) else frame


def segment_description(name: str, centroid: Mapping[str, float] | None = None) -> str:
    """A marketer's one-line description of a segment, plus its typical customer when known."""
    key = " ".join(str(name).split()).casefold()
    base = re.sub(r"\s*\((?:high spend|mid spend|low spend|spend rank \d+)\)\s*$", "", key).strip()
    text = MODEL_SEGMENT_DESCRIPTIONS.get(key) or SEGMENT_DESCRIPTIONS.get(base) or ""
    if centroid:
        typical = (f"Typical customer: last bought {centroid['recency']:.0f} days ago, "
                   f"{centroid['frequency']:.1f} orders, {centroid['monetary']:,.0f} spent.")
        text = f"{text} {typical}".strip()
    return text or "A segment of the current model."


def customer_position(model: Any, recency: float, frequency: float, monetary: float) -> pd.DataFrame:
    """Where one customer sits against every centroid: the centroid values and the distance in the
    model's own space (log1p, standardised), nearest first. The nearest is the customer's cluster."""
    point = model.standardise([recency, frequency, monetary])
    centers = model.predictor.centers  # row i: cluster i, already in that space
    rows = [{"cluster": c.id, "segment": c.name, **c.centroid,
             "distance": float(np.sqrt(((point - centers[c.id]) ** 2).sum()))} for c in model.clusters]
    return pd.DataFrame(rows).sort_values("distance", kind="stable").reset_index(drop=True)


def lookup_customer(assigned: pd.DataFrame, customer_id: str) -> pd.Series:
    """One customer's row by id (DataError naming the id when it is not in the data)."""
    wanted = str(customer_id).strip()
    if wanted.endswith(".0"):
        wanted = wanted[:-2]
    hits = assigned.loc[assigned["customer_id"] == wanted]
    if hits.empty:
        raise DataError(f"customer {customer_id!r} is not in the current data")
    return hits.iloc[0]


__all__ = [
    "EXAMPLE_CUSTOMER",
    "Dataset",
    "MappingCheck",
    "apply_renames",
    "assign_segments",
    "check_mapping",
    "countries",
    "customer_position",
    "ensure_demo",
    "export_frame",
    "file_fingerprint",
    "filter_customers",
    "grid_frame",
    "guess_mapping",
    "kpis",
    "load_athena",
    "load_files",
    "lookup_customer",
    "mapping_from_choices",
    "naming_table",
    "renames",
    "rf_heatmap_data",
    "save_renames",
    "save_upload",
    "segment_description",
    "segment_summary",
    "to_csv_bytes",
    "versions_frame",
]
