"""The cleaning report: what the rules dropped, what is left, and the revenue that remains."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Literal, NamedTuple

import duckdb

from rfm.data.engine import first_row, quote_identifier, quote_literal
from rfm.data.query import cleaned_kept_summary_sql, cleaning_report_sql, rule_totals_sql

RULES: tuple[tuple[str, str], ...] = (
    ("no_customer", "no customer id"),
    ("incomplete", "no date or no quantity/price/amount"),
    ("bad_number", "quantity, price or amount not finite or beyond 1e9"),
    ("future_date", "dated after the run date (or on/after the snapshot)"),
    ("bad_price", "zero or negative price (zero amount)"),
    ("duplicate", "exact duplicate of another line"),
    ("stock_adjustment", "negative quantity outside a cancellation invoice"),
    ("not_purchase_or_return", "zero quantity, or positive quantity on a cancellation invoice"),
)


class ReportRow(NamedTuple):
    """One figure of the cleaning report: what it counts (`label`, the one wording of the CLI and the
    dashboard), the figure, its kind ("count"; "money": an amount in the log's currency; "dates": the
    first and last day, None when there is none) and `level` (1: a part of the level-0 row above it)."""

    label: str
    value: int | float | tuple[date | None, date | None]
    kind: Literal["count", "money", "dates"]
    level: int = 0


@dataclass(frozen=True)
class CleaningReport:
    rows_read: int
    no_customer: int
    incomplete: int
    bad_number: int
    future_date: int
    bad_price: int
    duplicate: int
    stock_adjustment: int
    not_purchase_or_return: int
    purchase_lines: int
    return_lines: int
    customers: int
    invoices: int
    first_date: datetime | None
    last_date: datetime | None
    purchase_revenue: float
    returned_revenue: float
    # (file, the earlier file it repeats): every line of the first is also in the second, so its
    # lines were counted once, as duplicates. Named so a folder holding one log twice is noticed.
    repeated_files: tuple[tuple[str, str], ...] = ()

    @property
    def rows_dropped(self) -> int:
        return sum(getattr(self, name) for name, _ in RULES)

    @property
    def net_revenue(self) -> float:
        return self.purchase_revenue + self.returned_revenue

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["first_date"] = self.first_date.isoformat() if self.first_date else None
        data["last_date"] = self.last_date.isoformat() if self.last_date else None
        data["rows_dropped"] = self.rows_dropped
        data["net_revenue"] = round(self.net_revenue, 2)
        data["repeated_files"] = [{"file": file, "repeats": of} for file, of in self.repeated_files]
        return data

    def repeated_files_lines(self) -> list[str]:
        """One sentence per file that repeats another, for the CLI and the dashboard."""
        return [f"{os.path.basename(file)} repeats every line of {os.path.basename(of)}: its lines were counted "
                "once, as duplicates" for file, of in self.repeated_files]

    def why_nothing_is_left(self) -> str:
        """What the rules dropped, biggest first, for an error when no purchase is left: "of 1,200 lines
        read: 1,000 no customer id, 200 exact duplicate of another line"."""
        drops = sorted(((getattr(self, name), label) for name, label in RULES if getattr(self, name)),
                       key=lambda item: -item[0])
        said = ", ".join(f"{count:,} {label}" for count, label in drops[:3])
        if self.purchase_lines == 0 and self.return_lines:
            returns = f"{self.return_lines:,} return line{'s' if self.return_lines != 1 else ''} but no purchase"
            said = ", ".join(filter(None, [said, returns]))
        return f"of {self.rows_read:,} lines read: {said or 'no line was dropped, yet none is a purchase'}"

    def rows(self) -> list[ReportRow]:
        """The report's figures in order, each labelled with exactly what it counts: the one list both the
        CLI (`format`) and the dashboard (rfm.service.insights.cleaning_rows) show, each in its own number
        format. A line is counted under the first rule that drops it, so the dropped and kept lines add up
        to the lines read."""
        def day(value: date | None) -> date | None:  # a datetime from the log, reported as its day
            return value.date() if isinstance(value, datetime) else value

        rows = [ReportRow("lines read", self.rows_read, "count")]
        rows += [ReportRow(f"dropped: {label}", getattr(self, name), "count", 1) for name, label in RULES]
        rows += [
            ReportRow("lines kept", self.purchase_lines + self.return_lines, "count"),
            ReportRow("kept: purchase lines", self.purchase_lines, "count", 1),
            ReportRow("kept: return lines", self.return_lines, "count", 1),
            ReportRow("customers with a purchase", self.customers, "count"),
            ReportRow("invoices with a purchase", self.invoices, "count"),
            ReportRow("dates of the lines kept", (day(self.first_date), day(self.last_date)), "dates"),
            ReportRow("revenue of the purchase lines kept", self.purchase_revenue, "money"),
            ReportRow("revenue of the return lines kept", self.returned_revenue, "money"),
            ReportRow("net revenue of the lines kept", self.net_revenue, "money"),
        ]
        return rows

    def format(self) -> str:
        """The report as `rfm ingest` prints it: `rows`, parts indented under their total, amounts with
        cents and no currency (the log does not say which)."""
        def text(row: ReportRow) -> str:
            if row.kind == "dates":
                assert isinstance(row.value, tuple)
                return " to ".join(day.isoformat() if day else "-" for day in row.value)
            if row.kind == "money":
                return f"{row.value:,.2f}"
            return f"{row.value:,}"

        rows = [("  " * row.level + row.label, text(row)) for row in self.rows()]
        width = max(len(label) for label, _ in rows) + 2
        values = max(len(value) for _, value in rows)
        lines = [f"{label:<{width}}{value:>{values}}" for label, value in rows]
        lines += [f"note: {line}" for line in self.repeated_files_lines()]
        return "\n".join(lines)


def cleaning_report(con: duckdb.DuckDBPyConnection, view: str, snapshot: date | None = None, *,
                    totals: str | None = None, kept: str | None = None) -> CleaningReport:
    """Run the report query on a canonical view (see rfm.data.sources.load_source); with a `snapshot`,
    lines on or after it count as dated in the future (as the RFM table leaves them out). `totals` and
    `kept` name tables made already from the view with the same snapshot (rfm.data.query's
    `rule_totals_sql` and `kept_summary_sql`), so the log is not read again."""
    cursor = con.execute(cleaning_report_sql(quote_identifier(view), snapshot,
                                             totals=quote_identifier(totals) if totals else None,
                                             kept=quote_identifier(kept) if kept else None))
    names = [d[0] for d in cursor.description]
    row = first_row(cursor)
    assert row is not None
    values = dict(zip(names, row, strict=True))
    for key in ("purchase_revenue", "returned_revenue"):
        values[key] = float(values[key] or 0.0)
    return CleaningReport(**values, repeated_files=repeated_files(con, view))


def written_log_report(con: duckdb.DuckDBPyConnection, view: str, parquet: str, *,
                       kept_rows: int | None = None) -> CleaningReport:
    """The cleaning report of the log in `view` whose cleaned lines `rfm ingest` has just written to the
    Parquet files `parquet` (a path or glob): what de-duplication kept is read from them (see
    `cleaned_kept_summary_sql`), so the log is not de-duplicated a second time for the report. `kept_rows`,
    the purchases and returns before de-duplication when the writing counted them: when every valid line
    is one of them, the log is not read again for the other kinds."""
    totals, kept = "_written_totals", "_written_kept"
    source = quote_identifier(view)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {totals} AS {rule_totals_sql(source)}")
    try:
        row = first_row(con.execute(f"SELECT valid_rows FROM {totals}"))
        other_kinds = kept_rows is None or (row is not None and row[0] > kept_rows)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {kept} AS " + cleaned_kept_summary_sql(
            f"read_parquet({quote_literal(parquet)})", source, other_kinds=other_kinds))
        return cleaning_report(con, view, totals=totals, kept=kept)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {kept}")
        con.execute(f"DROP TABLE IF EXISTS {totals}")


def repeated_files(con: duckdb.DuckDBPyConnection, view: str) -> tuple[tuple[str, str], ...]:
    """Files of the view whose every line (customer and line hash) is also in another file: (file, the
    other). Of two identical files the later one (by name) is named. Costs a pass only with several files."""
    source = quote_identifier(view)
    files = first_row(con.execute(f"SELECT count(DISTINCT _file) FROM {source}"))
    if not files or files[0] < 2:
        return ()
    rows = con.execute(f"""
WITH lines AS (SELECT DISTINCT _file, coalesce(customer_id, '') AS customer, _line_hash FROM {source}),
sizes AS (SELECT _file, count(*) AS n FROM lines GROUP BY _file),
shared AS (
    SELECT a._file AS file, b._file AS other, count(*) AS n
    FROM lines AS a JOIN lines AS b ON a.customer = b.customer AND a._line_hash = b._line_hash AND a._file <> b._file
    GROUP BY a._file, b._file
)
SELECT shared.file, shared.other, sizes.n = (SELECT n FROM sizes AS o WHERE o._file = shared.other) AS same
FROM shared JOIN sizes ON sizes._file = shared.file
WHERE shared.n = sizes.n
ORDER BY shared.file, shared.other""").fetchall()
    named: list[tuple[str, str]] = []
    for file, other, same in rows:
        if same and file < other:
            continue  # identical files: name the later one only
        if any(f == file for f, _ in named):
            continue
        named.append((str(file), str(other)))
    return tuple(named)

