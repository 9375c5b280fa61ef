"""The RFM query, written once as SQL text (DuckDB dialect, portable to Athena/Trino via sqlglot).

Pure functions that build SQL strings; nothing here touches a database. The cleaning rules, the
returns policy, the snapshot date, the quintile scores and the R x F segment names all live in this
one statement, so an engine (embedded DuckDB or Athena) computes the whole table where the data is.

Conventions that make every engine agree:
- recency is `date_diff('day', last purchase DATE, snapshot DATE)`: whole days on DATE values;
- scores are 1 + floor(5 * (rank - 1) / customers), with RANK() so that tied customers get the same
  score and nothing depends on row order; r_score ranks recency descending (recent = 5);
- monetary is rounded to the cent (plus 0.0, which turns a -0.0 into 0.0).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from rfm.segments import segment_case_sql


class ReturnsPolicy(StrEnum):
    """How returns count in monetary: subtracted from purchases (`net`) or left out (`exclude`)."""

    NET = "net"
    EXCLUDE = "exclude"

    @property
    def label(self) -> str:
        """How the dashboard and reports name the policy."""
        return "net of returns" if self is ReturnsPolicy.NET else "returns ignored"


RETURNS_POLICIES: tuple[str, ...] = tuple(p.value for p in ReturnsPolicy)

RFM_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "recency",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
)

CLEANED_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "invoice_id",
    "invoice_date",
    "quantity",
    "unit_price",
    "amount",
    "country",
)

# A line's price is usable: a positive unit price, or (logs with only a line amount) a non-zero amount.
PRICE_OK = "(unit_price > 0 OR (unit_price IS NULL AND amount <> 0))"
COMPLETE = "(invoice_date IS NOT NULL AND amount IS NOT NULL)"
# Quantities, prices and amounts are finite and at most this large in absolute value. `abs(x) <= limit`
# is false for NaN and infinities in both engines (DuckDB orders NaN above every number, Trino's
# comparisons with NaN are false), so no engine-specific function is needed.
MAX_ABS_NUMBER = 1_000_000_000
NUMBERS_OK = (
    f"(abs(amount) <= {MAX_ABS_NUMBER} AND (quantity IS NULL OR abs(quantity) <= {MAX_ABS_NUMBER}) "
    f"AND (unit_price IS NULL OR abs(unit_price) <= {MAX_ABS_NUMBER}))"
)
# After the row rules and de-duplication: purchases and returns are kept, nothing else.
IS_PURCHASE = "(amount > 0 AND NOT _cancellation)"
IS_RETURN = "(amount < 0 AND _cancellation)"
IS_STOCK_ADJUSTMENT = "(amount < 0 AND NOT _cancellation)"
# IS_PURCHASE OR IS_RETURN with `_cancellation` read once (a filter inlines the view's expression at
# every mention).
IS_PURCHASE_OR_RETURN = "(CASE WHEN _cancellation THEN amount < 0 ELSE amount > 0 END)"


def date_ok(snapshot: date | None = None) -> str:
    """A line is not dated in the future: on or before the run date (the engine's `current_date`, UTC)
    and, with a given snapshot, before the snapshot (the RFM table measures recency to it). The run date
    applies either way, so every path agrees (a log cleaned by `rfm ingest` lost its future lines on the
    day it was ingested)."""
    today = "CAST(invoice_date AS DATE) <= current_date"
    if snapshot is None:
        return f"({today})"
    return f"({today} AND CAST(invoice_date AS DATE) < DATE '{snapshot.isoformat()}')"


def row_rules(snapshot: date | None = None) -> tuple[tuple[str, str], ...]:
    """The rules on single lines, in the order the cleaning report counts them: (the report's field, the
    condition a line must meet to pass). A line is counted under the first rule it fails."""
    return (
        ("no_customer", "(_customer_key IS NOT NULL)"),  # the key: no text made for the test
        ("incomplete", COMPLETE),
        ("bad_number", NUMBERS_OK),
        ("future_date", date_ok(snapshot)),
        ("bad_price", PRICE_OK),
    )


def valid_lines_sql(source: str, snapshot: date | None = None) -> str:
    """Lines that pass every row rule: a customer, a date and an amount, finite numbers in range, a date
    not in the future, a usable price (before de-duplication)."""
    return f"SELECT * FROM {source} WHERE " + " AND ".join(condition for _, condition in row_rules(snapshot))


def kept_lines_sql(source: str, snapshot: date | None = None) -> str:
    """The lines that pass every row rule and are purchases or returns, before de-duplication: what the
    cleaned log is made of."""
    return f"{valid_lines_sql(source, snapshot)} AND {IS_PURCHASE_OR_RETURN}"


def revenue_term(returns: ReturnsPolicy | str, column: str = "amount") -> str:
    """What one line's `column` adds to monetary: all of it (net) or a purchase's only (exclude: returns
    are the negative lines)."""
    if ReturnsPolicy(returns) == "net":
        return column
    return f"CASE WHEN {column} > 0 THEN {column} ELSE 0 END"


def revenue_sum(returns: ReturnsPolicy | str, column: str = "amount") -> str:
    """The aggregate that sums `column` as monetary counts it (`revenue_term` of every line)."""
    return f"sum({revenue_term(returns, column)})"


def cleaned_lines_sql(source: str, snapshot: date | None = None, *, keys: bool = False) -> str:
    """The cleaned log: purchases (amount > 0) and returns (amount < 0) in canonical columns.

    The purchase/return filter is a row rule, so it runs before de-duplication (same result, fewer lines
    in the hash table). Lines dated after the run date (or on or after `snapshot`) are left out.

    With `keys` (for queries that group the lines again and only show customers): customer_id,
    invoice_id, invoice_date and amount, with the source's `_customer_key` as `customer_id` (an
    integer where the ids are; text again on the query's few output rows), `_invoice_key` as
    `invoice_id` and the date as a DATE, so the de-duplication's rows are narrow and fixed-width: on
    10 million lines it takes a third less time and half the memory.
    """
    if keys:
        outer = "_customer_key AS customer_id, invoice_id, invoice_date, amount"
        inner = "_customer_key, _invoice_key AS invoice_id, CAST(invoice_date AS DATE) AS invoice_date, amount"
    else:
        outer = ", ".join(["CAST(_customer_key AS VARCHAR) AS customer_id", *CLEANED_COLUMNS[1:]])
        inner = ", ".join(["_customer_key", *CLEANED_COLUMNS[1:]])
    return (
        f"SELECT {outer} FROM (SELECT DISTINCT _line_hash, {inner} "
        f"FROM ({kept_lines_sql(source, snapshot)}) AS kept) AS distinct_lines"
    )


def repeated_line_keys_sql(source: str) -> str:
    """The (line hash, customer) pairs that more than one kept line shares, with their `lines`: the only
    lines that can be exact duplicates (identical lines share both). Narrow fixed-width keys, so grouping
    every line of a large log by them costs a fraction of a DISTINCT over whole lines. Plus one row with
    NULL keys whose `lines` counts every kept line (a grouping set of its own, in the same pass)."""
    return (f"SELECT _line_hash, _customer_key, count(*) AS lines FROM ({kept_lines_sql(source)}) AS kept "
            "GROUP BY GROUPING SETS ((_line_hash, _customer_key), ()) "
            "HAVING count(*) > 1 OR GROUPING(_line_hash) = 1")


def cleaned_lines_by_keys_sql(source: str, repeated: str, *, by_date: bool = False) -> str:
    """`cleaned_lines_sql(source)`'s lines (same columns, same rows) given `repeated`, a relation of
    `repeated_line_keys_sql(source)` (its NULL-key row matches no line): a line whose key no other line
    shares is kept as it is read, and only the few lines with a shared key go through a DISTINCT over
    whole lines (a hash collision puts a line there and changes nothing). On 100 million lines the
    whole-line DISTINCT spilled to disk.

    With `by_date` the lines come sorted by date; the customer id is made text after the sort (text in the
    sorted rows made the sort of 73 million lines 5 s slower)."""
    outer = ", ".join(["CAST(_customer_key AS VARCHAR) AS customer_id", *CLEANED_COLUMNS[1:]])
    inner = ", ".join(["_customer_key", *CLEANED_COLUMNS[1:]])
    kept = f"({kept_lines_sql(source)}) AS kept"
    keys = f"{repeated} USING (_line_hash, _customer_key)"
    order = " ORDER BY invoice_date" if by_date else ""
    return (
        f"SELECT {outer} FROM (SELECT {inner} FROM {kept} ANTI JOIN {keys} "
        f"UNION ALL SELECT {inner} FROM (SELECT DISTINCT _line_hash, {inner} FROM {kept} SEMI JOIN {keys}) "
        f"AS repeated_lines{order}) AS distinct_lines"
    )


def _invoices_sql(lines: str, customer: str, invoice: str, returns: ReturnsPolicy, where: str = "") -> str:
    """One row per (customer, invoice) of `lines`: its last purchase date (NULL for an invoice of returns
    only), its last line's date and its revenue."""
    filtered = f"\n    {where}" if where else ""
    return f"""SELECT
        {customer}{"" if customer == "customer_id" else " AS customer_id"},
        max(CASE WHEN amount > 0 THEN CAST(invoice_date AS DATE) END) AS last_purchase,
        max(CAST(invoice_date AS DATE)) AS last_line,
        {revenue_sum(returns)} AS revenue
    FROM {lines}{filtered}
    GROUP BY {customer}, {invoice}"""


def _invoices_net_of_duplicates_sql(source: str, snapshot: date | None, returns: ReturnsPolicy) -> str:
    """The `invoices` of a raw log: every kept line grouped by invoice as it is read, plus, for each group of
    exact duplicate lines (same line hash, customer and amount), one row that takes the extra copies'
    revenue back out (its dates NULL: a copy changes neither an invoice's dates nor whether it is a
    purchase). Lines on or after `snapshot` are not kept.

    The same figures as grouping `cleaned_lines_sql`'s de-duplicated lines by invoice: there, the invoice
    grouping read the DISTINCT's output in hash order and cost a third of the raw table's time; here it
    reads the lines in the log's order (an invoice's lines together), and the duplicates are found by a
    narrower grouping. On 10 million lines the statement takes a tenth less time. The copies come first
    in the UNION: at 100 million lines under a 3 GB limit the process peaked 0.1 GB lower that way."""
    kept = f"({kept_lines_sql(source, snapshot)}) AS kept"
    return f"""invoices AS (
    -- each group of exact duplicate lines: the extra copies' revenue taken back out
    SELECT
        _customer_key AS customer_id,
        NULL::DATE AS last_purchase,
        NULL::DATE AS last_line,
        -(count(*) - 1) * {revenue_term(returns)} AS revenue
    FROM {kept}
    GROUP BY _line_hash, _customer_key, amount
    HAVING count(*) > 1
    UNION ALL
    -- each invoice, every kept line as read
    {_invoices_sql(kept, "_customer_key", "_invoice_key", returns)}
)"""


def rfm_sql(
    source: str,
    *,
    cleaned: bool = False,
    snapshot: date | None = None,
    returns: ReturnsPolicy | str = ReturnsPolicy.NET,
) -> str:
    """One statement: per customer recency, frequency, monetary, 1-5 scores and R x F segment.

    `source` is a relation with the canonical columns (see rfm.data.sources); when `cleaned` is true it is
    a log already cleaned by `rfm ingest` (purchases and returns only) and the rules are not re-run.
    Lines on or after the snapshot date are left out. Also returns `snapshot_date` on every row.
    """
    if returns not in RETURNS_POLICIES:
        raise ValueError(f"returns policy must be one of {RETURNS_POLICIES}, got {returns!r}")
    returns = ReturnsPolicy(returns)
    if snapshot is not None:
        # A given snapshot: lines on or after it are left out.
        snapshot_cte = f"snapshot AS (SELECT DATE '{snapshot.isoformat()}' AS snapshot_date)"
        where = "WHERE CAST(invoice_date AS DATE) < (SELECT snapshot_date FROM snapshot)"
    else:
        # The default snapshot, the day after the last line, comes from the (small) invoice table, not
        # from another pass over the lines.
        snapshot_cte = (
            "snapshot AS (SELECT CAST(max(last_line) + INTERVAL 1 DAY AS DATE) AS snapshot_date FROM invoices)"
        )
        where = ""
    if cleaned:
        lines = f"lines AS (SELECT customer_id, invoice_id, invoice_date, amount FROM {source})"
        invoices = f"invoices AS (\n    {_invoices_sql('lines', 'customer_id', 'invoice_id', returns, where)}\n)"
    else:
        lines, invoices = "", _invoices_net_of_duplicates_sql(source, snapshot, returns)
    segment = segment_case_sql("r_score", "f_score")
    ordered = [snapshot_cte, invoices] if snapshot is not None else [invoices, snapshot_cte]
    ctes = ",\n".join(c for c in (lines, *ordered) if c)
    return f"""
WITH {ctes},
customers AS (
    SELECT
        i.customer_id,
        date_diff('day', max(i.last_purchase), s.snapshot_date) AS recency,
        count(i.last_purchase) AS frequency,
        round(sum(i.revenue), 2) + 0.0 AS monetary,
        s.snapshot_date
    FROM invoices AS i
    CROSS JOIN snapshot AS s
    GROUP BY i.customer_id, s.snapshot_date
    HAVING count(i.last_purchase) > 0
),
ranked AS (
    SELECT
        *,
        rank() OVER (ORDER BY recency DESC) AS r_rank,
        rank() OVER (ORDER BY frequency) AS f_rank,
        rank() OVER (ORDER BY monetary) AS m_rank,
        count(*) OVER () AS customers_total
    FROM customers
),
scored AS (
    SELECT
        customer_id, recency, frequency, monetary, snapshot_date,
        CAST(floor(5.0 * (r_rank - 1) / customers_total) AS INTEGER) + 1 AS r_score,
        CAST(floor(5.0 * (f_rank - 1) / customers_total) AS INTEGER) + 1 AS f_score,
        CAST(floor(5.0 * (m_rank - 1) / customers_total) AS INTEGER) + 1 AS m_score
    FROM ranked
)
SELECT
    CAST(customer_id AS VARCHAR) AS customer_id, recency, frequency, monetary, r_score, f_score, m_score,
    {segment} AS rfm_segment,
    snapshot_date
FROM scored
ORDER BY CAST(customer_id AS VARCHAR)
""".strip()


def rule_totals_sql(source: str, snapshot: date | None = None) -> str:
    """One scan of every line read: `rows_read` and `raw_revenue`; per row rule (see `row_rules`) the
    lines it drops, counted under the first rule they fail, and their revenue (`<rule>_revenue`);
    `valid_rows` and `valid_revenue`, the lines every rule keeps (before de-duplication)."""
    rules = row_rules(snapshot)
    parts = ["count(*) AS rows_read", "coalesce(sum(amount), 0) AS raw_revenue"]
    for i, (name, condition) in enumerate(rules):
        fails_here = " AND ".join([*(c for _, c in rules[:i]), f"NOT {condition}"])
        parts += [f"count(*) FILTER (WHERE {fails_here}) AS {name}",
                  f"coalesce(sum(amount) FILTER (WHERE {fails_here}), 0) AS {name}_revenue"]
    valid = " AND ".join(c for _, c in rules)
    parts += [f"count(*) FILTER (WHERE {valid}) AS valid_rows",
              f"coalesce(sum(amount) FILTER (WHERE {valid}), 0) AS valid_revenue"]
    return "SELECT\n    " + ",\n    ".join(parts) + f"\nFROM {source}"


def distinct_lines_sql(source: str, snapshot: date | None = None) -> str:
    """The valid lines of every kind (purchases, returns, stock adjustments, others), exact duplicates
    collapsed to one, in narrow fixed-width columns: `customer_id` is the source's `_customer_key`,
    `invoice_id` its `_invoice_key`; plus the date, amount and `_cancellation` (no text: carrying a
    country through the de-duplication took as long as the rest of it)."""
    return ("SELECT DISTINCT _line_hash, _customer_key AS customer_id, _invoice_key AS invoice_id, invoice_date, "
            f"amount, _cancellation FROM ({valid_lines_sql(source, snapshot)}) AS valid")


LINE_KIND = (f"CASE WHEN {IS_PURCHASE} THEN 'purchase' WHEN {IS_RETURN} THEN 'return' "
             f"WHEN {IS_STOCK_ADJUSTMENT} THEN 'stock_adjustment' ELSE 'other' END")


def line_summary_sql(source: str, snapshot: date | None = None) -> str:
    """The de-duplicated valid lines (`distinct_lines_sql`) summed per customer, invoice, day and kind
    (`purchase`, `return`, `stock_adjustment`, `other`): `lines`, `amount` (their sum),
    `first_time` and `last_time`. A log's one de-duplication, kept small (an invoice's lines share a
    row), so the cleaning report, the revenue reconciliation, the RFM statement and the per-customer
    extras each read some hundred thousand rows instead of the lines again."""
    return f"""
SELECT
    customer_id, invoice_id, CAST(invoice_date AS DATE) AS day, {LINE_KIND} AS kind,
    count(*) AS lines, sum(amount) AS amount, min(invoice_date) AS first_time, max(invoice_date) AS last_time
FROM ({distinct_lines_sql(source, snapshot)}) AS d
GROUP BY ALL
""".strip()


def summary_lines_sql(summary: str) -> str:
    """Purchases and returns of a `line_summary_sql` relation as the RFM statement reads lines (one row
    per invoice, day and kind: the same recency, frequency and monetary as the lines themselves)."""
    return (f"SELECT customer_id, invoice_id, day AS invoice_date, amount, lines, first_time, last_time "
            f"FROM {summary} WHERE kind IN ('purchase', 'return')")


def customer_countries_sql(source: str, snapshot: date | None = None) -> str:
    """Per customer (`_customer_key` as `customer_id`) and country, the purchase and return lines that
    pass the row rules (before de-duplication: a repeated line repeats its country): what the
    customer's most frequent country is taken from."""
    return (f"SELECT _customer_key AS customer_id, country, count(*) AS lines "
            f"FROM ({kept_lines_sql(source, snapshot)}) AS kept WHERE country IS NOT NULL GROUP BY ALL")


def kept_summary_sql(summary: str) -> str:
    """What is left after de-duplication, from a `line_summary_sql` relation: its lines, and per kind
    (stock adjustment, purchase, return, neither) lines and revenue; customers and invoices with a
    purchase; the first and last time of a purchase or return. Invoices are counted by their 64-bit key
    (two ids would have to collide on 64 bits to be counted once)."""
    def lines(kind: str) -> str:
        return f"coalesce(sum(lines) FILTER (WHERE kind = '{kind}'), 0)"

    def revenue(kind: str) -> str:
        return f"coalesce(sum(amount) FILTER (WHERE kind = '{kind}'), 0)"

    return f"""
SELECT
    coalesce(sum(lines), 0) AS distinct_rows,
    {lines('stock_adjustment')} AS stock_adjustment, {revenue('stock_adjustment')} AS stock_adjustment_revenue,
    {lines('other')} AS not_purchase_or_return, {revenue('other')} AS not_purchase_or_return_revenue,
    {lines('purchase')} AS purchase_lines, {lines('return')} AS return_lines,
    count(DISTINCT customer_id) FILTER (WHERE kind = 'purchase') AS customers,
    count(DISTINCT invoice_id) FILTER (WHERE kind = 'purchase') AS invoices,
    min(first_time) FILTER (WHERE kind IN ('purchase', 'return')) AS first_date,
    max(last_time) FILTER (WHERE kind IN ('purchase', 'return')) AS last_date,
    {revenue('purchase')} AS purchase_revenue, {revenue('return')} AS returned_revenue
FROM {summary}
""".strip()


def cleaned_kept_summary_sql(cleaned: str, source: str, *, other_kinds: bool = True) -> str:
    """`kept_summary_sql`'s figures for a log whose cleaned lines were just written (`rfm ingest`): the
    purchases and returns from `cleaned` (the written file: one row per distinct kept line), the other
    kinds from the lines of `source` that pass the row rules but are neither (a few; de-duplicated here;
    with `other_kinds` false, when the caller counted none, the log is not read for them).
    So the log is de-duplicated once, by the writing, instead of a second time for the report.

    The distinct customers and invoices are counted in a query of their own: beside the other
    aggregates DuckDB took 7.3 s for them on 73 million lines, alone 1.3 s."""
    def count(condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    def revenue(condition: str) -> str:
        return f"coalesce(sum(amount) FILTER (WHERE {condition}), 0)"

    # With `other_kinds` false the same aggregates run over no rows: zeros of the same types.
    rows = (f"SELECT {LINE_KIND} AS kind, amount FROM (SELECT DISTINCT _line_hash, _customer_key, _invoice_key, "
            f"invoice_date, amount, _cancellation FROM ({valid_lines_sql(source)} AND NOT {IS_PURCHASE_OR_RETURN}) "
            "AS v) AS d") if other_kinds else "SELECT NULL::VARCHAR AS kind, NULL::DOUBLE AS amount WHERE false"
    others = f"""SELECT
        count(*) AS lines,
        {count("kind = 'stock_adjustment'")} AS stock_adjustment,
        {revenue("kind = 'stock_adjustment'")} AS stock_adjustment_revenue,
        {count("kind = 'other'")} AS not_purchase_or_return,
        {revenue("kind = 'other'")} AS not_purchase_or_return_revenue
    FROM ({rows}) AS o"""
    return f"""
WITH written AS (
    SELECT
        count(*) AS lines, {count("amount > 0")} AS purchase_lines, {count("amount < 0")} AS return_lines,
        min(invoice_date) AS first_date, max(invoice_date) AS last_date,
        {revenue("amount > 0")} AS purchase_revenue, {revenue("amount < 0")} AS returned_revenue
    FROM {cleaned}
),
buyers AS (
    SELECT count(DISTINCT customer_id) AS customers, count(DISTINCT invoice_id) AS invoices
    FROM {cleaned} WHERE amount > 0
),
others AS (
    {others}
)
SELECT
    written.lines + others.lines AS distinct_rows,
    others.stock_adjustment, others.stock_adjustment_revenue,
    others.not_purchase_or_return, others.not_purchase_or_return_revenue,
    written.purchase_lines, written.return_lines, buyers.customers, buyers.invoices,
    written.first_date, written.last_date, written.purchase_revenue, written.returned_revenue
FROM written CROSS JOIN buyers CROSS JOIN others
""".strip()


def cleaning_report_sql(source: str, snapshot: date | None = None, *, totals: str | None = None,
                        kept: str | None = None) -> str:
    """Counts for the cleaning report: rows read and dropped per rule, kept lines, customers, revenue.

    Rules are counted in order (a line is counted under the first rule that drops it). Two passes over
    the log, each skipped when its result is given as a relation made already (the dashboard keeps
    both): the rule totals (`totals`, of `rule_totals_sql`) and what de-duplication leaves (`kept`, of
    `kept_summary_sql`)."""
    rules = row_rules(snapshot)
    kept_sql = f"SELECT * FROM {kept}" if kept else kept_summary_sql(f"({line_summary_sql(source, snapshot)}) AS s")
    return f"""
WITH totals AS ({f"SELECT * FROM {totals}" if totals else rule_totals_sql(source, snapshot)}),
kept AS ({kept_sql})
SELECT
    totals.rows_read, {", ".join(f"totals.{name}" for name, _ in rules)},
    totals.valid_rows - kept.distinct_rows AS duplicate,
    kept.stock_adjustment, kept.not_purchase_or_return,
    kept.purchase_lines, kept.return_lines, kept.customers, kept.invoices,
    kept.first_date, kept.last_date, kept.purchase_revenue, kept.returned_revenue
FROM totals CROSS JOIN kept
""".strip()
