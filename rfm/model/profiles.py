"""Per-segment profiles and revenue concentration: pure functions on an RFM table.

No model here: profiles take a table that already has a segment column (see
`SegmentModel.assign`), so the dashboard can profile any grouping (the R x F grid's `rfm_segment`
too), and concentration only needs monetary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rfm.errors import DataError

TOP_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
LORENZ_POINTS = 101


def segment_profiles(table: pd.DataFrame, segment_column: str = "segment") -> pd.DataFrame:
    """One row a segment: customers, share of customers, revenue, share of revenue, mean and median
    recency, frequency, monetary; sorted by revenue, largest first.

    Shares are of the whole table (every customer, all net revenue), so they add up to 1.
    """
    for column in (segment_column, "recency", "frequency", "monetary"):
        if column not in table.columns:
            raise DataError(f"cannot profile segments: the table has no {column!r} column")
    if table.empty:
        raise DataError("cannot profile segments of an empty table")
    grouped = table.groupby(segment_column, sort=False, observed=True)
    profile = grouped.agg(
        customers=("monetary", "size"),
        revenue=("monetary", "sum"),
        recency_mean=("recency", "mean"),
        recency_median=("recency", "median"),
        frequency_mean=("frequency", "mean"),
        frequency_median=("frequency", "median"),
        monetary_mean=("monetary", "mean"),
        monetary_median=("monetary", "median"),
    )
    if "cluster" in table.columns:
        profile.insert(0, "cluster", grouped["cluster"].first().astype("int64"))
    total_revenue = float(table["monetary"].sum())
    profile.insert(_after(profile, "customers"), "customer_share", profile["customers"] / len(table))
    profile.insert(
        _after(profile, "revenue"),
        "revenue_share",
        profile["revenue"] / total_revenue if total_revenue else np.nan,
    )
    profile = profile.sort_values("revenue", ascending=False, kind="stable")
    return profile.reset_index().rename(columns={segment_column: "segment"})


def _after(frame: pd.DataFrame, column: str) -> int:
    """The position just after `column` (the columns are unique, so get_loc gives an int)."""
    position = frame.columns.get_loc(column)
    assert isinstance(position, int)
    return position + 1


@dataclass(frozen=True)
class RevenueConcentration:
    """How concentrated revenue is among the customers with positive net revenue."""

    customers: int  # customers with monetary > 0 (the base of every share)
    revenue: float
    excluded_customers: int  # customers with zero or negative net monetary, left out
    top_shares: dict[float, float]  # top fraction of customers -> their share of revenue
    lorenz: list[tuple[float, float]] = field(repr=False)  # (share of customers, share of revenue)
    gini: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "customers": self.customers,
            "revenue": round(self.revenue, 2),
            "excluded_customers": self.excluded_customers,
            "top_shares": {f"top_{_percent(p)}": share for p, share in self.top_shares.items()},
            "lorenz": [[x, y] for x, y in self.lorenz],
            "gini": self.gini,
        }


def revenue_concentration(
    monetary: Sequence[float] | np.ndarray | pd.Series,
    top: Sequence[float] = TOP_SHARES,
    points: int = LORENZ_POINTS,
) -> RevenueConcentration:
    """Share of revenue of the top 1/5/10/20/50% of customers, the Lorenz curve and the Gini coefficient.

    Computed over customers with positive net monetary (a customer whose returns cancel their
    purchases has no revenue share to speak of, and negative values would bend the Lorenz curve
    below zero). "Top p" is the ceil(p * n) biggest spenders. The Gini is exact (from every
    customer); the Lorenz curve is given at `points` evenly spaced customer shares.
    """
    values = np.asarray(monetary, dtype="float64")
    if values.ndim != 1 or not np.isfinite(values).all():
        raise DataError("monetary must be a column of finite numbers")
    positive = np.sort(values[values > 0])
    n = len(positive)
    if n == 0:
        raise DataError("no customer has a positive net revenue: nothing to measure concentration on")
    total = float(positive.sum())
    cumulative = np.concatenate([[0.0], np.cumsum(positive)])  # ascending: poorest first
    top_shares = {
        float(p): float((total - cumulative[n - int(np.ceil(p * n))]) / total) for p in top
    }
    positions = np.rint(np.linspace(0, n, points)).astype(int)
    lorenz = [(float(i / n), float(cumulative[i] / total)) for i in positions]
    ranks = np.arange(1, n + 1)
    gini = float(2.0 * np.sum(ranks * positive) / (n * total) - (n + 1) / n)
    return RevenueConcentration(
        customers=n,
        revenue=total,
        excluded_customers=int(len(values) - n),
        top_shares=top_shares,
        lorenz=lorenz,
        gini=gini,
    )


def _percent(p: float) -> str:
    return f"{p * 100:g}pct"
