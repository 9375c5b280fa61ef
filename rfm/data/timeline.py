"""Segments over time as SQL text: migration between two snapshots, trends, next-period validation.

Pure functions that build SQL strings (DuckDB dialect, rendered for Athena by rfm.cloud.dialects),
like rfm.data.query, whose cleaning rules (`cleaned_lines_sql`) they reuse: nothing is cleaned twice
or differently. Snapshot semantics are the RFM table's: the table at snapshot S uses only lines dated
before S, with the same recency, frequency, monetary, quintile scores and R x F segments as `rfm_sql`.

Why a "daily" relation: every timeline question needs each customer's state at several dates. The
lines are aggregated once into one row per (customer, day) — how many invoices had their first
purchase that day, whether the customer bought that day, the day's revenue under the returns policy —
and every snapshot is computed from those rows by joining them with a small table of snapshot dates:
one pass over the lines for any number of snapshots. The embedded engine materialises the relation
once as a temporary table; Athena gets it inline (one scan per statement).

Segments are the R x F grid (`rfm.segments`), or a K-Means model given as its plain arrays
(`KMeansSpec`: this package imports no model code). A model's segments come back as cluster ids
(-1: no net revenue), never as names, so user-chosen segment names never reach SQL text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from rfm.data.query import RETURNS_POLICIES, ReturnsPolicy, cleaned_lines_sql, kept_lines_sql, revenue_sum
from rfm.segments import SEGMENTS, segment_case_sql

DAILY_COLUMNS: tuple[str, ...] = ("customer_id", "day", "new_invoices", "purchase", "revenue")


@dataclass(frozen=True)
class KMeansSpec:
    """What assigning a customer to a K-Means segment takes: log1p, z-scores with the scaler's mean and
    scale, the nearest centre (`Predictor.nearest`'s arithmetic); monetary <= 0 is cluster -1."""

    mean: tuple[float, float, float]
    scale: tuple[float, float, float]
    centers: tuple[tuple[float, float, float], ...]
    center_sq: tuple[float, ...]  # each centre's squared norm, as the model computes it

    def __post_init__(self) -> None:
        values = [*self.mean, *self.scale, *self.center_sq, *(v for c in self.centers for v in c)]
        if not all(isinstance(v, float) and math.isfinite(v) for v in values):
            raise ValueError("a K-Means spec holds finite floats only")
        if not self.centers or len(self.center_sq) != len(self.centers):
            raise ValueError("a K-Means spec needs one squared norm per centre")


Segmenter = KMeansSpec | None  # None: the R x F grid


@dataclass(frozen=True)
class SnapshotWindow:
    """A snapshot date (the RFM state from lines before it) and a window [start, end) whose purchases
    and revenue are counted beside it (empty when start == end)."""

    snapshot: date
    window_start: date
    window_end: date

    @property
    def scan_end(self) -> date:
        return max(self.snapshot, self.window_end)


def _date(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def _float(value: float) -> str:
    """A float as a DOUBLE literal in both engines (an exponent: a plain decimal is DECIMAL there) that
    reads back as exactly the same float64."""
    return f"{value:.17e}"


def invoice_days_sql(source: str, *, cleaned: bool = False,
                     returns: ReturnsPolicy | str = ReturnsPolicy.NET,
                     revenue_window: tuple[date, date] | None = None) -> str:
    """One row per (customer, invoice, day) of the cleaned log: whether it holds a purchase line and its
    revenue under the returns policy (net: every line; exclude: purchases only), as monetary counts it.

    The one pass over the lines; `daily_sql` reads its result. Customers keep the source's key (an
    integer where the ids are, see `cleaned_lines_sql`): the per-day table, its window and every join
    run on it, and ids become text only on the statements' output rows.

    `revenue_window` [start, end) is for a question that reads revenue only there (a migration or a
    validation under the R x F grid, whose segments rest on recency and frequency alone): exact duplicate
    lines change revenue and nothing else, so a raw log's lines are de-duplicated inside the window only
    and revenue is 0 outside it. On 10 million lines that is a third of the time. Monetary is then
    unknown: rfm.service.timeline refuses every other question on such a relation."""
    if returns not in RETURNS_POLICIES:
        raise ValueError(f"returns policy must be one of {RETURNS_POLICIES}, got {returns!r}")
    if revenue_window is not None and not cleaned:
        return _windowed_invoice_days_sql(source, revenue_window, returns)
    lines = (
        f"SELECT customer_id, invoice_id, invoice_date, amount FROM {source}"
        if cleaned
        else cleaned_lines_sql(source, keys=True)
    )
    revenue = revenue_sum(returns)
    return f"""
SELECT
    customer_id,
    invoice_id,
    CAST(invoice_date AS DATE) AS day,
    max(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS purchase,
    {revenue} AS revenue
FROM ({lines}) AS lines
GROUP BY customer_id, invoice_id, CAST(invoice_date AS DATE)
""".strip()


def _windowed_invoice_days_sql(source: str, window: tuple[date, date], returns: ReturnsPolicy | str) -> str:
    """`invoice_days_sql` with revenue inside [start, end) only. One aggregation does both jobs: a line
    inside the window is grouped by its de-duplication key (`cleaned_lines_sql`'s: line hash, customer,
    invoice, day, amount), a line outside by its invoice-day alone (its line hash and amount are NULL
    there), so the hash table holds the window's distinct lines and one row per other invoice-day."""
    start, end = window
    if not start < end:
        raise ValueError(f"a revenue window needs start < end, got {start} and {end}")
    inside = f"CAST(invoice_date AS DATE) >= {_date(start)} AND CAST(invoice_date AS DATE) < {_date(end)}"
    revenue = revenue_sum(returns, "window_amount")
    return f"""
SELECT
    customer_id,
    invoice_id,
    day,
    max(purchase) AS purchase,
    coalesce({revenue}, 0.0) AS revenue
FROM (
    SELECT
        _customer_key AS customer_id,
        _invoice_key AS invoice_id,
        CAST(invoice_date AS DATE) AS day,
        CASE WHEN {inside} THEN _line_hash END AS line_hash,
        CASE WHEN {inside} THEN amount END AS window_amount,
        max(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS purchase
    FROM ({kept_lines_sql(source)}) AS kept
    GROUP BY 1, 2, 3, 4, 5
) AS lines
GROUP BY customer_id, invoice_id, day
""".strip()


def daily_sql(invoice_days: str) -> str:
    """One row per (customer, day): DAILY_COLUMNS, from the relation `invoice_days_sql` gives.

    `new_invoices` counts the invoices whose first purchase line is on that day, so summing it over the
    days before S gives the RFM frequency at S (invoices with a purchase before S) even for an invoice
    spanning days; `purchase` is 1 when the customer bought that day; `revenue` is the day's revenue.
    (DuckDB would turn the window into a self-join and scan the lines twice, so the embedded engine
    stores `invoice_days` first; Athena gets both inline, see `inline_daily`.)"""
    return f"""
WITH flagged AS (
    SELECT
        *,
        min(CASE WHEN purchase = 1 THEN day END) OVER (PARTITION BY customer_id, invoice_id) AS first_purchase
    FROM {invoice_days}
)
SELECT
    customer_id,
    day,
    CAST(sum(CASE WHEN purchase = 1 AND day = first_purchase THEN 1 ELSE 0 END) AS BIGINT) AS new_invoices,
    max(purchase) AS purchase,
    sum(revenue) AS revenue
FROM flagged
GROUP BY customer_id, day
""".strip()


def inline_daily(source: str, *, cleaned: bool = False, returns: ReturnsPolicy | str = ReturnsPolicy.NET) -> str:
    """The daily relation of `source` as one parenthesised subquery (no alias: statements name it), what a
    statement sent to Athena reads."""
    invoice_days = f"({invoice_days_sql(source, cleaned=cleaned, returns=returns)}) AS invoice_days"
    return f"({daily_sql(invoice_days)})"


def date_range_sql(daily: str) -> str:
    """First and last day of the cleaned log."""
    return f"SELECT min(day) AS first_day, max(day) AS last_day FROM {daily} AS daily"


def _snapshots_cte(windows: Sequence[SnapshotWindow]) -> str:
    if not windows:
        raise ValueError("at least one snapshot is needed")
    rows = "\n    UNION ALL ".join(
        f"SELECT {_date(w.snapshot)} AS snapshot_date, {_date(w.window_start)} AS window_start, "
        f"{_date(w.window_end)} AS window_end, {_date(w.scan_end)} AS scan_end"
        for w in windows
    )
    return f"snapshots AS (\n    {rows}\n)"


def _segment_expr(segmenter: Segmenter) -> str:
    """The segment key of a scored customer: the grid's name, or the model's cluster id."""
    if segmenter is None:
        return segment_case_sql("r_score", "f_score")
    # d0..d(k-1) and their minimum come from `_model_ctes`; the first minimal index wins, as numpy's argmin.
    nearest = " ".join(f"WHEN d{j} = d_min THEN {j}" for j in range(len(segmenter.centers)))
    return f"CASE WHEN monetary <= 0 THEN -1 {nearest} END"


def _model_ctes(segmenter: KMeansSpec) -> str:
    """z-scores of log1p(recency, frequency, monetary) and the squared distance to each centre (up to a
    constant: ||c||^2 - 2 z.c, the model's own formula)."""
    m, s = segmenter.mean, segmenter.scale
    features = ("recency", "frequency", "CASE WHEN monetary > 0 THEN monetary ELSE 0 END")
    z = ",\n        ".join(
        f"(ln(1 + {feature}) - {_float(m[i])}) / {_float(s[i])} AS z{i}" for i, feature in enumerate(features)
    )
    k = len(segmenter.centers)
    d = ",\n        ".join(
        f"{_float(segmenter.center_sq[j])} - 2.0 * ("
        + " + ".join(f"z{i} * {_float(segmenter.centers[j][i])}" for i in range(3))
        + f") AS d{j}"
        for j in range(k)
    )
    d_min = f"least({', '.join(f'd{j}' for j in range(k))})" if k > 1 else "d0"
    return f"""standardised AS (
    SELECT *,
        {z}
    FROM scored
),
distances AS (
    SELECT *,
        {d}
    FROM standardised
),
nearest AS (
    SELECT *, {d_min} AS d_min FROM distances
)"""


def _segmented(state: str, segmenter: Segmenter) -> str:
    """Per (snapshot, customer) of the CTE `state` (snapshot_date, customer_id, recency, frequency, monetary,
    bought, window_revenue): the quintile scores within each snapshot, exactly as `rfm_sql` scores one
    table, and the segment key. A complete statement."""
    final = "nearest" if segmenter is not None else "scored"
    model = f",\n{_model_ctes(segmenter)}" if segmenter is not None else ""
    return f"""WITH {state},
ranked AS (
    SELECT
        *,
        rank() OVER (PARTITION BY snapshot_date ORDER BY recency DESC) AS r_rank,
        rank() OVER (PARTITION BY snapshot_date ORDER BY frequency) AS f_rank,
        rank() OVER (PARTITION BY snapshot_date ORDER BY monetary) AS m_rank,
        count(*) OVER (PARTITION BY snapshot_date) AS customers_total
    FROM state
),
scored AS (
    SELECT
        snapshot_date, customer_id, recency, frequency, monetary, bought, window_revenue,
        CAST(floor(5.0 * (r_rank - 1) / customers_total) AS INTEGER) + 1 AS r_score,
        CAST(floor(5.0 * (f_rank - 1) / customers_total) AS INTEGER) + 1 AS f_score,
        CAST(floor(5.0 * (m_rank - 1) / customers_total) AS INTEGER) + 1 AS m_score
    FROM ranked
){model}
SELECT
    snapshot_date, CAST(customer_id AS VARCHAR) AS customer_id, recency, frequency, monetary, r_score, f_score, m_score,
    {_segment_expr(segmenter)} AS segment_key,
    bought, window_revenue
FROM {final}"""


def customers_sql(daily: str, windows: Sequence[SnapshotWindow], segmenter: Segmenter = None) -> str:
    """Per (snapshot, customer with a purchase before it): the RFM columns and scores at the snapshot, the
    segment key, and whether the customer bought (`bought`, 0/1) and what they brought (`window_revenue`)
    in the snapshot's window. Every snapshot in one pass over `daily` (joined with the snapshot dates)."""
    state = f"""{_snapshots_cte(windows)},
state AS (
    SELECT
        s.snapshot_date,
        d.customer_id,
        date_diff('day', max(CASE WHEN d.purchase = 1 AND d.day < s.snapshot_date THEN d.day END),
                  s.snapshot_date) AS recency,
        CAST(sum(CASE WHEN d.day < s.snapshot_date THEN d.new_invoices ELSE 0 END) AS BIGINT) AS frequency,
        round(sum(CASE WHEN d.day < s.snapshot_date THEN d.revenue ELSE 0 END), 2) + 0.0 AS monetary,
        max(CASE WHEN d.purchase = 1 AND d.day >= s.window_start AND d.day < s.window_end THEN 1 ELSE 0 END)
            AS bought,
        sum(CASE WHEN d.day >= s.window_start AND d.day < s.window_end THEN d.revenue ELSE 0 END)
            AS window_revenue
    FROM {daily} AS d
    JOIN snapshots AS s ON d.day < s.scan_end
    GROUP BY s.snapshot_date, d.customer_id
    HAVING sum(CASE WHEN d.day < s.snapshot_date THEN d.new_invoices ELSE 0 END) > 0
)"""
    return _segmented(state, segmenter)


def trend_sql(daily: str, windows: Sequence[SnapshotWindow], segmenter: Segmenter = None) -> str:
    """Per (snapshot, segment): customers, the revenue they brought in the snapshot's window (the period
    ending at the snapshot) and their summed monetary at the snapshot. All snapshots in one pass.

    (Running sums over each customer's periods instead of the join was tried: DuckDB's per-customer
    window sort made it 2-3x slower on 10 million lines.)"""
    return f"""
WITH customers AS (
{customers_sql(daily, windows, segmenter)}
)
SELECT
    snapshot_date,
    segment_key,
    count(*) AS customers,
    round(sum(window_revenue), 2) + 0.0 AS revenue,
    round(sum(monetary), 2) + 0.0 AS monetary
FROM customers
GROUP BY snapshot_date, segment_key
ORDER BY snapshot_date, segment_key
""".strip()


def _migration_pairs(daily: str, start: date, end: date, segmenter: Segmenter) -> str:
    """Every customer at `end` with their segment key at `start` (NULL: not yet a customer) and at `end`,
    and the revenue they brought in [start, end)."""
    if not start < end:
        raise ValueError(f"the first snapshot ({start}) must come before the second ({end})")
    windows = (SnapshotWindow(start, start, start), SnapshotWindow(end, start, end))
    return f"""
WITH customers AS (
{customers_sql(daily, windows, segmenter)}
),
before AS (SELECT customer_id, segment_key FROM customers WHERE snapshot_date = {_date(start)}),
after AS (SELECT * FROM customers WHERE snapshot_date = {_date(end)})
SELECT
    a.customer_id,
    b.segment_key AS from_key,
    a.segment_key AS to_key,
    a.recency, a.frequency, a.monetary,
    a.window_revenue
FROM after AS a
LEFT JOIN before AS b ON a.customer_id = b.customer_id
""".strip()


def migration_sql(daily: str, start: date, end: date, segmenter: Segmenter = None) -> str:
    """Per (segment at `start`, segment at `end`): customers and the revenue they brought in [start, end).
    A NULL `from_key` is the customers with no purchase before `start`."""
    return f"""
WITH pairs AS (
{_migration_pairs(daily, start, end, segmenter)}
)
SELECT
    from_key,
    to_key,
    count(*) AS customers,
    round(sum(window_revenue), 2) + 0.0 AS revenue
FROM pairs
GROUP BY from_key, to_key
ORDER BY customers DESC, from_key, to_key
""".strip()


def _key_literal(key: str | int | None, segmenter: Segmenter) -> str:
    """A segment key as SQL, checked against the keys the segmenter can produce (a name of the grid, a
    cluster id), so nothing else is ever pasted into the statement."""
    if segmenter is None:
        if key is not None and key not in SEGMENTS:
            raise ValueError(f"{key!r} is not a segment of the R x F grid")
        return "NULL" if key is None else "'" + str(key).replace("'", "''") + "'"
    if key is None:
        return "NULL"
    if isinstance(key, bool) or not isinstance(key, int) or not -1 <= key < len(segmenter.centers):
        raise ValueError(f"{key!r} is not a cluster id of the model")
    return str(key)


def move_customers_sql(daily: str, start: date, end: date, segmenter: Segmenter,
                       from_key: str | int | None, to_key: str | int) -> str:
    """The customers of one move (from `from_key` at `start`, None: not yet a customer, to `to_key` at
    `end`) with their RFM at `end` and the revenue they brought in [start, end): a campaign list."""
    source = _key_literal(from_key, segmenter)
    target = _key_literal(to_key, segmenter)
    match = "p.from_key IS NULL" if from_key is None else f"p.from_key = {source}"
    return f"""
WITH pairs AS (
{_migration_pairs(daily, start, end, segmenter)}
)
SELECT
    p.customer_id, p.from_key, p.to_key, p.recency, p.frequency, p.monetary,
    round(p.window_revenue, 2) + 0.0 AS revenue
FROM pairs AS p
WHERE {match} AND p.to_key = {target}
ORDER BY revenue DESC, p.customer_id
""".strip()


def validation_sql(daily: str, snapshot: date, end: date, segmenter: Segmenter = None) -> str:
    """Per segment at `snapshot`: customers, how many bought in [snapshot, end), and their revenue there."""
    if not snapshot < end:
        raise ValueError(f"the horizon must end after the snapshot ({snapshot})")
    return f"""
WITH customers AS (
{customers_sql(daily, (SnapshotWindow(snapshot, snapshot, end),), segmenter)}
)
SELECT
    segment_key,
    count(*) AS customers,
    CAST(sum(bought) AS BIGINT) AS repeat_customers,
    round(sum(window_revenue), 2) + 0.0 AS revenue
FROM customers
GROUP BY segment_key
ORDER BY segment_key
""".strip()
