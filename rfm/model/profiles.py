"""Per-segment profiles and revenue concentration: pure functions on an RFM table.

Also the playbook's defaults (`DEFAULT_PLAYBOOK`): a short description and a recommended action per
known segment name, looked up by `segment_key` so spellings of one name share them.

No model here: profiles take a table that already has a segment column (see
`SegmentModel.assign`), so the dashboard can profile any grouping (the R x F grid's `rfm_segment`
too), and concentration only needs monetary.
"""

from __future__ import annotations

import re
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


# --- the playbook: what a segment is and what to do about it ------------------------------------


@dataclass(frozen=True)
class PlaybookEntry:
    """A segment's short description and the recommended action, as a marketer reads them."""

    description: str
    action: str


# Keyed by `segment_key`, so "At-Risk", "At Risk" and "at risk" share one entry (default names differ
# between k=4 models and the R x F grid's names, and analysts spell them their own way).
DEFAULT_PLAYBOOK: dict[str, PlaybookEntry] = {
    "champions": PlaybookEntry(
        "Bought recently, buy often and spend the most.",
        "Reward them: early access, loyalty perks, referral asks. No discounts needed."),
    "loyal": PlaybookEntry(
        "Buy regularly; respond to loyalty programmes.",
        "Upsell higher-value products, ask for reviews, keep them in the loyalty programme."),
    "loyalcustomers": PlaybookEntry(
        "Buy regularly; respond to loyalty programmes.",
        "Upsell higher-value products, ask for reviews, keep them in the loyalty programme."),
    "potentialloyalists": PlaybookEntry(
        "Recent customers with a few purchases: nurture them into loyal ones.",
        "Offer membership or a loyalty programme; recommend products related to what they bought."),
    "newcustomers": PlaybookEntry(
        "Bought for the first time very recently.",
        "Welcome series and onboarding; make the second purchase easy."),
    "promising": PlaybookEntry(
        "Recent but infrequent buyers.",
        "Build awareness of the range; a free-shipping threshold or a bundle for the next order."),
    "needattention": PlaybookEntry(
        "Average recency and frequency: at risk of slipping.",
        "Limited-time offers based on past purchases; reactivate before they drift."),
    "abouttosleep": PlaybookEntry(
        "Below average recency and frequency: reactivate before they are lost.",
        "Share popular products and a modest discount; reconnect now."),
    "atrisk": PlaybookEntry(
        "Used to buy often, have not bought for a while.",
        "Personalised win-back e-mails with relevant products; a service check-in."),
    "cantlose": PlaybookEntry(
        "Were among the most frequent buyers and have gone quiet: win them back.",
        "Win them back with a personal contact and their favourite products; do not lose them to a competitor."),
    "hibernating": PlaybookEntry(
        "Last bought long ago and rarely: low priority.",
        "Low-cost reactivation only (seasonal newsletter); exclude from paid campaigns."),
    "nonetrevenue": PlaybookEntry(
        "Returns cancel their purchases: no net spend to segment on.",
        "Check the returns (quality, fit, fraud) before marketing to them."),
}
FALLBACK_ENTRY = PlaybookEntry("A segment of the current model.",
                               "No default advice for this name: an analyst can write one on the Model page.")
_TIER = re.compile(r"\((?:high spend|mid spend|low spend|spend rank \d+)\)\s*$", re.IGNORECASE)


def segment_key(name: str) -> str:
    """A segment name reduced to what identifies it: lower case, letters and digits only, without
    the spend tier naming adds to clusters that share a grid cell ("At-Risk" and "at risk (High
    Spend)" are both "atrisk"). Playbook entries and segment colours belong to this key."""
    return re.sub(r"[^0-9a-z]", "", _TIER.sub("", str(name)).casefold())


def default_playbook_entry(name: str) -> PlaybookEntry:
    """The built-in entry of a segment name (the fallback for a name it does not know)."""
    return DEFAULT_PLAYBOOK.get(segment_key(name), FALLBACK_ENTRY)
