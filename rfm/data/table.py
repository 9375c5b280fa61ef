"""Computing the per-customer RFM table on the embedded DuckDB engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import duckdb

from rfm.data.engine import quote_identifier, quote_literal
from rfm.data.query import RFM_COLUMNS, ReturnsPolicy, rfm_sql
from rfm.data.sources import LoadedSource, SourceOptions, opened_source
from rfm.errors import DataError

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made: `rfm table` writes CSV without it
    import pandas as pd


@dataclass(frozen=True)
class RfmOptions:
    """How RFM is computed: the snapshot date (default: the day after the log's last date) and
    whether returns are subtracted from monetary (`net`) or ignored (`exclude`)."""

    snapshot: date | None = None
    returns: ReturnsPolicy = ReturnsPolicy.NET

    def __post_init__(self) -> None:
        if not isinstance(self.returns, ReturnsPolicy):  # "net" / "exclude" from a flag or a file
            try:
                object.__setattr__(self, "returns", ReturnsPolicy(self.returns))
            except ValueError:
                raise DataError(f"returns policy {self.returns!r}: expected one of "
                                f"{', '.join(p.value for p in ReturnsPolicy)}") from None


@dataclass(frozen=True)
class RfmResult:
    """The RFM table (one row a customer, columns RFM_COLUMNS), the snapshot it was taken at, the options
    and the table's content fingerprint (see `content_fingerprint`)."""

    table: pd.DataFrame
    snapshot: date
    options: RfmOptions = field(default_factory=RfmOptions)
    fingerprint: str = ""


def rfm_from_view(
    con: duckdb.DuckDBPyConnection, source: LoadedSource, options: RfmOptions | None = None
) -> RfmResult:
    """Run the one RFM query against a loaded source."""
    options = options or RfmOptions()
    sql = rfm_sql(
        quote_identifier(source.view),
        cleaned=source.cleaned,
        snapshot=options.snapshot,
        returns=options.returns,
    )
    frame = con.execute(sql).df()
    return result_from_frame(frame, options, where=source.files[0])


def compute_rfm(
    paths: Sequence[str | os.PathLike[str]],
    source_options: SourceOptions | None = None,
    options: RfmOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> RfmResult:
    """Transactions at `paths` (CSV, Excel, Parquet) to the RFM table, in one DuckDB query."""
    with opened_source(paths, source_options, memory_limit=memory_limit) as (con, source):
        return rfm_from_view(con, source, options)


def write_rfm_csv(
    paths: Sequence[str | os.PathLike[str]],
    out: str,
    source_options: SourceOptions | None = None,
    options: RfmOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> int:
    """The RFM table straight from DuckDB to a CSV file (`-`: standard output); returns the rows written.

    Same statement and columns as `compute_rfm`, without building a DataFrame on the way: the fast path of
    `rfm table` on large logs.
    """
    options = options or RfmOptions()
    target = "/dev/stdout" if out == "-" else out
    with opened_source(paths, source_options, memory_limit=memory_limit) as (con, source):
        sql = rfm_sql(quote_identifier(source.view), cleaned=source.cleaned, snapshot=options.snapshot,
                      returns=options.returns)
        columns = ", ".join(RFM_COLUMNS)
        try:
            written = con.execute(
                f"COPY (SELECT {columns} FROM ({sql}) AS rfm) TO {quote_literal(target)} (HEADER, DELIMITER ',')"
            ).fetchone()
        except duckdb.IOException as exc:
            raise DataError(f"{out}: cannot write: {str(exc).splitlines()[0]}") from exc
        rows = int(written[0]) if written else 0
        if rows == 0:
            if out != "-":
                os.remove(out)
            raise _no_customers(source.files[0], options)
        return rows


def _no_customers(where: str, options: RfmOptions) -> DataError:
    return DataError(
        f"{where}: no customer has a purchase"
        + (f" before the snapshot date {options.snapshot}" if options.snapshot else "")
        + " after cleaning (see `rfm ingest` for the cleaning report)"
    )


def content_fingerprint(table: pd.DataFrame) -> str:
    """A short hash of the customers and their recency, frequency and monetary: equal for the same data
    and snapshot wherever the files live, whenever they were written and whichever engine computed it
    (what a model records, to tell later whether it is applied to the data it was trained on)."""
    import hashlib

    import pandas as pd

    hashed = pd.util.hash_pandas_object(table[["customer_id", "recency", "frequency", "monetary"]], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def result_from_frame(frame: pd.DataFrame, options: RfmOptions, where: str) -> RfmResult:
    """An RfmResult from the RFM statement's rows, whichever engine ran it (typed alike for both)."""
    import pandas as pd

    if frame.empty:
        raise _no_customers(where, options)
    snapshot = pd.Timestamp(frame["snapshot_date"].iloc[0]).date()
    table = frame[list(RFM_COLUMNS)].copy()
    table["customer_id"] = table["customer_id"].astype(str)
    for column in ("recency", "frequency"):
        table[column] = table[column].astype("int64")
    for column in ("r_score", "f_score", "m_score"):
        table[column] = table[column].astype("int8")
    table["monetary"] = table["monetary"].astype("float64")
    table["rfm_segment"] = table["rfm_segment"].astype(str)
    table = table.reset_index(drop=True)
    return RfmResult(table=table, snapshot=snapshot, options=options, fingerprint=content_fingerprint(table))
