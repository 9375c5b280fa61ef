"""`rfm ingest`: convert a log once to a cleaned Parquet file in canonical columns.

Re-reading a 20 MB workbook or a large CSV on every run is slow; the cleaned Parquet is read in a
fraction of the time and is marked (Parquet key-value metadata) so that the cleaning rules are not
run twice on it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import duckdb

from rfm.data.cleaning import CleaningReport, written_log_report
from rfm.data.engine import first_row, own_threads, partitioned_aggregation, quote_identifier, quote_literal
from rfm.data.query import CLEANED_COLUMNS, cleaned_lines_by_keys_sql, repeated_line_keys_sql
from rfm.data.sources import CLEANED_MARKER_KEY, CLEANED_MARKER_VALUE, LoadedSource, SourceOptions, opened_source
from rfm.data.table import check_output, copy_to
from rfm.errors import DataError

REPEATED_KEYS = "_repeated_line_keys"
ORDER_SAMPLE_LINES = 100_000  # the log's first lines, read to decide whether the written file is sorted


class CleanedLog(NamedTuple):
    """The cleaned log as SQL (`by_date`: sorted by date), and its purchases and returns before
    de-duplication (None: not counted)."""

    sql: str
    by_date: str
    kept_rows: int | None


@contextmanager
def cleaned_log(con: duckdb.DuckDBPyConnection, source: LoadedSource) -> Iterator[CleanedLog]:
    """The cleaned log in canonical columns, valid inside the block: a raw log through the cleaning rules,
    de-duplicated through a table of its repeated line keys (made here, dropped on exit; see
    `cleaned_lines_by_keys_sql`), an ingested one as is (without the source view's internal columns)."""
    view = quote_identifier(source.view)
    if source.cleaned:
        sql = f"SELECT {', '.join(CLEANED_COLUMNS)} FROM {view}"
        yield CleanedLog(sql, sql + " ORDER BY invoice_date", None)
        return
    with partitioned_aggregation(con):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {REPEATED_KEYS} AS {repeated_line_keys_sql(view)}")
    try:
        row = first_row(con.execute(f"SELECT lines FROM {REPEATED_KEYS} WHERE _line_hash IS NULL"))
        con.execute(f"DELETE FROM {REPEATED_KEYS} WHERE _line_hash IS NULL")
        yield CleanedLog(cleaned_lines_by_keys_sql(view, REPEATED_KEYS),
                         cleaned_lines_by_keys_sql(view, REPEATED_KEYS, by_date=True), int(row[0]) if row else 0)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {REPEATED_KEYS}")


def grouped_by_invoice(invoice_keys: Sequence[object]) -> bool:
    """Whether lines in this order come grouped by invoice, with invoices of several lines to show it: at
    most a tenth more runs of adjacent lines of one invoice than invoices, and a fifth more lines than runs.
    A shuffled log fails (its invoices' lines are scattered, or, in a sample, seen once each); so does a
    log of one-line invoices, which gives no evidence either way."""
    if not invoice_keys:
        return False
    runs = 1 + sum(1 for before, after in itertools.pairwise(invoice_keys) if before != after)
    return runs <= 1.1 * len(set(invoice_keys)) and len(invoice_keys) >= 1.2 * runs


def log_in_invoice_order(con: duckdb.DuckDBPyConnection, source: LoadedSource) -> bool:
    """`grouped_by_invoice` of the log's first `ORDER_SAMPLE_LINES` lines (read in the log's order: a few
    milliseconds, the first row group or block only)."""
    rows = con.execute(f"SELECT coalesce(_invoice_key, 0) FROM {quote_identifier(source.view)} "
                       f"LIMIT {ORDER_SAMPLE_LINES}").fetchall()
    return grouped_by_invoice([row[0] for row in rows])


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: SourceOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> CleaningReport:
    """Write the cleaned log at `paths` to the Parquet file `out` (atomically: a failed or killed run
    leaves `out` as it was, and its temporary file is removed then or by the next run); return the
    cleaning report."""
    target = os.fspath(out)
    if not target.lower().endswith(".parquet"):
        raise DataError(f"{target}: --out must be a .parquet file")
    check_output(target, make_parents=True)  # before the log is read: a bad --out fails at once
    with opened_source(paths, options, memory_limit=memory_limit) as (con, source):
        own_threads(con)  # a copy, not an aggregation: see rfm.data.engine
        # A log whose lines come grouped by invoice (as shops export them) is written in its own order; any
        # other log sorted by date (not by date and customer: a shorter sort key). A shuffled log of 10
        # million lines written as it came was 2.3 times the size of the sorted file; on a 100-million-line
        # log in invoice order, under 3 GB, the sort was 25 s of 55 s and made `rfm table` on the file no
        # faster. Written in the log's order, the lines that had exact copies come last, in no particular order.
        in_order = log_in_invoice_order(con, source)
        with cleaned_log(con, source) as cleaned:
            copy_to(con, cleaned.sql if in_order else cleaned.by_date, target, make_parents=True,
                    kv_metadata=f", KV_METADATA {{{CLEANED_MARKER_KEY}: {quote_literal(CLEANED_MARKER_VALUE)}}}")
        # The report after the file: what the de-duplication kept is counted in the file just written.
        return written_log_report(con, source.view, target, kept_rows=cleaned.kept_rows)
