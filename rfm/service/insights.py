"""What the dashboard shows about customers and segments, as pure functions of a dataset or a
segmentation: headline figures, the R x F heatmap and grid, where one customer sits against the
centroids, and a marketer's description of a segment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from rfm.data.cleaning import CleaningReport
from rfm.data.query import ReturnsPolicy
from rfm.errors import DataError
from rfm.model import RevenueConcentration, SegmentModel, revenue_concentration
from rfm.model.profiles import PlaybookEntry
from rfm.segments import rf_grid
from rfm.service.datasets import Dataset
from rfm.service.segmentation import playbook_entry

# The seed's example customer (README, model server docs): scored on the Score page by default.
EXAMPLE_CUSTOMER: dict[str, float] = {"recency": 15, "frequency": 12, "monetary": 540.0}

@dataclass(frozen=True)
class Kpis:
    """The Overview's headline figures: revenue is net monetary, orders are purchase invoices."""

    customers: int
    revenue: float
    orders: int
    first_date: date | None
    last_date: date | None
    snapshot: date


def kpis(dataset: Dataset) -> Kpis:
    table = dataset.customers
    return Kpis(customers=len(table), revenue=float(table["monetary"].sum()), orders=int(table["frequency"].sum()),
                first_date=dataset.first_date, last_date=dataset.last_date, snapshot=dataset.snapshot)


def revenue_label(policy: ReturnsPolicy) -> str:
    """The revenue figure's label, following the returns choice: with returns ignored it is not net."""
    return "Revenue (net of returns)" if policy == ReturnsPolicy.NET else "Revenue (returns ignored)"


def revenue_help(policy: ReturnsPolicy) -> str:
    """What the revenue figure holds, in a sentence."""
    if policy == ReturnsPolicy.NET:
        return "purchases minus returns, before the snapshot."
    return "purchases only (returns are not subtracted), before the snapshot."


def cleaning_rows(report: CleaningReport) -> pd.DataFrame:
    """The cleaning report as a table, one row a figure in `CleaningReport.rows`'s order and wording
    (the CLI's `rfm ingest` prints the same rows): `step` (what the figure counts), `value` (a number, or
    for "dates" the first and last day) and `kind` ("count", "money" or "dates"), left unformatted for
    the dashboard's own number format."""
    return pd.DataFrame([(row.label, row.value, row.kind) for row in report.rows()],
                        columns=["step", "value", "kind"])


def concentration(customers: pd.DataFrame) -> RevenueConcentration:
    """How much of the revenue the top 1/5/10/20/50% of customers bring, the Lorenz curve and the Gini
    coefficient, over the customers with positive net revenue."""
    return revenue_concentration(customers["monetary"])


def period_label(first: date, last: date) -> str:
    """How long a log covers, in the unit a marketer reads it: days under two months, else months."""
    days = (last - first).days + 1
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{round(days / 30.4375)} months"


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


def countries(customers: pd.DataFrame) -> list[str]:
    """Countries by number of customers, largest first (for the filters)."""
    if "country" not in customers.columns:
        return []
    return customers["country"].dropna().value_counts().index.astype(str).tolist()


def segment_description(name: str, centroid: Mapping[str, float] | None = None,
                        playbook: Mapping[str, PlaybookEntry] | None = None, default_name: str | None = None) -> str:
    """A marketer's one-line description of a segment (the playbook's), plus its typical customer when
    the centroid is known."""
    text = playbook_entry(name, playbook, default_name).description
    if centroid:
        typical = (f"Typical customer: last bought {centroid['recency']:.0f} days ago, "
                   f"{centroid['frequency']:.1f} orders, {centroid['monetary']:,.0f} spent.")
        text = f"{text} {typical}".strip()
    return text


def customer_position(model: SegmentModel, recency: float, frequency: float, monetary: float) -> pd.DataFrame:
    """Where one customer sits against every centroid: the centroid values and the distance in the
    model's own space (log1p, standardised), nearest first. The nearest is the customer's cluster."""
    point = model.standardise([recency, frequency, monetary])
    centers = model.predictor.centers  # row i: cluster i, already in that space
    rows = [{"cluster": c.id, "segment": c.name, **c.centroid,
             "distance": float(np.sqrt(((point - centers[c.id]) ** 2).sum()))} for c in model.clusters]
    return pd.DataFrame(rows).sort_values("distance", kind="stable").reset_index(drop=True)


def customer_problem(recency: float, frequency: float, monetary: float) -> str | None:
    """Why typed RFM values cannot be a customer (None when they can): every customer of an RFM table
    has at least one order and a recency of zero or more days, so 0 orders with 5,000 spent is refused
    instead of scored as "1 orders"."""
    if recency < 0:
        return "Recency cannot be negative: it is the days since the last purchase."
    if frequency < 1:
        return "A customer has at least one order: frequency is 1 or more."
    if not np.isfinite(monetary):
        return "Spend must be a number."
    return None


def lookup_customer(customers: pd.DataFrame, customer_id: str) -> pd.Series:
    """One customer's row by id (DataError naming the id when it is not in the data)."""
    wanted = str(customer_id).strip()
    if wanted.endswith(".0"):
        wanted = wanted[:-2]
    hits = customers.loc[customers["customer_id"] == wanted]
    if hits.empty:
        raise DataError(f"customer {customer_id!r} is not in the current data")
    return hits.iloc[0]
