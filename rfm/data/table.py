"""Computing the per-customer RFM table on the embedded DuckDB engine."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, BinaryIO

import duckdb

from rfm.data.cleaning import CleaningReport, cleaning_report
from rfm.data.engine import connect, first_row, quote_identifier, quote_literal
from rfm.data.query import RFM_COLUMNS, ReturnsPolicy, rfm_sql
from rfm.data.sources import LoadedSource, SourceOptions, opened_source
from rfm.errors import DataError, first_line

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
    con: duckdb.DuckDBPyConnection, source: LoadedSource, options: RfmOptions | None = None,
    report: CleaningReport | None = None, raw_view: str | None = None,
) -> RfmResult:
    """Run the one RFM query against a loaded source. Without customers, the error says what the
    cleaning rules dropped: `report` when the caller has it, else the report on `raw_view` (the raw
    log's view, when `source` is a table cleaned from it) or on a raw `source`."""
    options = options or RfmOptions()
    sql = rfm_sql(
        quote_identifier(source.view),
        cleaned=source.cleaned,
        snapshot=options.snapshot,
        returns=options.returns,
    )
    frame = con.execute(sql).df()
    if frame.empty:
        raise _no_customers_in(con, source, options, report, raw_view)
    return result_from_frame(frame, options, where=source.files[0])


def _no_customers_in(con: duckdb.DuckDBPyConnection, source: LoadedSource, options: RfmOptions,
                     report: CleaningReport | None = None, raw_view: str | None = None) -> DataError:
    """`no_customers` for a loaded source, with the cleaning report's reason: `report`, else the report
    on `raw_view` or on `source` itself when it is a raw log (a log cleaned by `rfm ingest` has none)."""
    raw_view = raw_view or (None if source.cleaned else source.view)
    if report is None and raw_view is not None:
        report = cleaning_report(con, raw_view, options.snapshot)
    return no_customers(source.files[0], options, report)


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


# --out: the format by extension; anything else is refused with the list.
OUTPUT_EXTENSIONS: dict[str, str] = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
OUTPUT_HELP = ".csv, .csv.gz or .parquet (or - for standard output, as CSV)"
_TMP_SUFFIX = ".tmp"


def output_format(out: str) -> str:
    """'csv' or 'parquet' for an --out name by its extension (`-` and a name without extension: CSV);
    a one-line DataError naming the supported extensions otherwise. Pure."""
    if out == "-":
        return "csv"
    name = os.path.basename(out).lower()
    for ext in sorted(OUTPUT_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return OUTPUT_EXTENSIONS[ext]
    stem, ext = os.path.splitext(name)
    if not ext or not stem:
        return "csv"
    raise DataError(f"{out}: cannot write {ext} files; --out writes {OUTPUT_HELP}")


def copy_options(out: str) -> str:
    """The options of DuckDB's COPY for an --out name (explicit: the temporary name has no extension)."""
    if output_format(out) == "parquet":
        return "FORMAT parquet, COMPRESSION zstd"
    gzip = ", COMPRESSION gzip" if out.lower().endswith(".gz") else ""
    return f"FORMAT csv, HEADER, DELIMITER ','{gzip}"


def check_output(out: str, *, make_parents: bool = False) -> None:
    """An --out file can be written there: not a folder, in a folder (made when `make_parents`)."""
    if os.path.isdir(out):
        raise DataError(f"{out}: is a folder; --out names a file")
    parent = os.path.dirname(out) or "."
    if make_parents and not os.path.exists(parent):
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{out}: cannot make its folder: {exc.strerror or type(exc).__name__}") from None
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise DataError(f"{out}: cannot write: {parent} {what}")


@contextmanager
def output_file(out: str, *, make_parents: bool = False) -> Iterator[str]:
    """A temporary name next to `out` (`.NAME.PID.tmp`) to write; renamed over `out` when the block
    completes, removed when it fails. Temporary files of earlier runs that were killed (their process
    is gone) are removed first, so none piles up."""
    check_output(out, make_parents=make_parents)
    directory, name = os.path.split(out)
    directory = directory or "."
    remove_stale_outputs(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        yield tmp
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise DataError(f"{out}: cannot write: {exc.strerror or type(exc).__name__}") from None
    finally:
        with suppress(OSError):
            os.unlink(tmp)


def remove_stale_outputs(directory: str, name: str) -> list[str]:
    """Remove `.NAME.PID.tmp` files whose process no longer runs (and the older `.NAME.tmp`); returns
    what was removed."""
    removed: list[str] = []
    prefix = f".{name}."
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if entry == f".{name}{_TMP_SUFFIX}":  # the fixed name earlier versions used
            middle = ""
        elif entry.startswith(prefix) and entry.endswith(_TMP_SUFFIX) and len(entry) > len(prefix) + len(_TMP_SUFFIX):
            middle = entry[len(prefix):-len(_TMP_SUFFIX)]
        else:
            continue
        if not (middle.isdigit() and _process_exists(int(middle))):
            with suppress(OSError):
                os.unlink(os.path.join(directory, entry))
                removed.append(entry)
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def copy_to(con: duckdb.DuckDBPyConnection, select: str, out: str, *, make_parents: bool = False,
            kv_metadata: str = "", if_empty: Callable[[], DataError] | None = None) -> int:
    """`COPY (select) TO out` by out's extension, atomically (`-`: standard output, through this process's
    own stream, so `>> file` appends); returns the rows written. One-line DataError when out cannot be
    written; the error `if_empty()` makes is raised (and nothing written to a file) when there are no
    rows (made only then: it may query the log for the reason)."""
    options = copy_options(out) + kv_metadata
    if out == "-":
        rows = _copy_to_stream(con, select, options, sys.stdout.buffer)
        if not rows and if_empty is not None:
            raise if_empty()
        return rows
    with output_file(out, make_parents=make_parents) as tmp:
        try:
            row = first_row(con.execute(f"COPY ({select}) TO {quote_literal(tmp)} ({options})"))
        except duckdb.IOException as exc:
            reason = first_line(exc).replace(tmp, out)
            raise DataError(f"{out}: cannot write: {reason}") from None
        rows = int(row[0]) if row else 0
        if not rows and if_empty is not None:
            raise if_empty()
    return rows


def _copy_to_stream(con: duckdb.DuckDBPyConnection, select: str, options: str, stream: BinaryIO) -> int:
    """DuckDB writes into a pipe (named by /proc/self/fd on Linux, a temporary file elsewhere) that a
    thread copies to `stream`: nothing reopens standard output, which would truncate a `>>` target."""
    if not os.path.isdir("/proc/self/fd"):
        with tempfile.TemporaryDirectory(prefix="rfm-") as folder:
            tmp = os.path.join(folder, "out")
            row = first_row(con.execute(f"COPY ({select}) TO {quote_literal(tmp)} ({options})"))
            with open(tmp, "rb") as handle:
                shutil.copyfileobj(handle, stream)
        stream.flush()
        return int(row[0]) if row else 0
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def pump() -> None:
        with os.fdopen(read_fd, "rb") as source:
            try:
                while chunk := source.read(1 << 16):
                    stream.write(chunk)
                stream.flush()
            except BaseException as exc:  # a closed pipe downstream: DuckDB's next write fails too
                failures.append(exc)

    thread = threading.Thread(target=pump, name="rfm-stdout", daemon=True)
    thread.start()
    try:
        row = first_row(con.execute(f"COPY ({select}) TO {quote_literal(f'/proc/self/fd/{write_fd}')} ({options})"))
    except duckdb.IOException as exc:
        os.close(write_fd)
        thread.join()
        if failures:
            raise failures[0] from None
        raise DataError(f"standard output: cannot write: {first_line(exc)}") from None
    os.close(write_fd)
    thread.join()
    if failures:
        raise failures[0]
    return int(row[0]) if row else 0


def write_rfm_table(
    paths: Sequence[str | os.PathLike[str]],
    out: str,
    source_options: SourceOptions | None = None,
    options: RfmOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> int:
    """The RFM table straight from DuckDB to a file, CSV or Parquet by `out`'s extension (`-`: CSV on
    standard output); returns the rows written. Written atomically: a failed or empty run leaves
    nothing behind (and an existing file as it was).

    Same statement and columns as `compute_rfm`, without building a DataFrame on the way: the fast path of
    `rfm table` on large logs.
    """
    options = options or RfmOptions()
    output_format(out)  # an unsupported extension is refused before the log is read
    with opened_source(paths, source_options, memory_limit=memory_limit) as (con, source):
        sql = rfm_sql(quote_identifier(source.view), cleaned=source.cleaned, snapshot=options.snapshot,
                      returns=options.returns)
        select = f"SELECT {', '.join(RFM_COLUMNS)} FROM ({sql}) AS rfm"
        return copy_to(con, select, out, if_empty=lambda: _no_customers_in(con, source, options))


write_rfm_csv = write_rfm_table  # the older name (it writes CSV or Parquet by extension now)


def write_frame(frame: pd.DataFrame, out: str) -> int:
    """A DataFrame (e.g. Athena's RFM table) to `out` like `write_rfm_table` writes: by extension,
    atomically, `-` for standard output; returns the rows written."""
    con = connect()
    try:
        con.register("_frame", frame)
        return copy_to(con, "SELECT * FROM _frame", out)
    finally:
        con.close()


def no_customers(where: str, options: RfmOptions, report: CleaningReport | None = None) -> DataError:
    """The error for a table without customers, with the cleaning report's reason when there is one
    (the same words in the CLI and the dashboard, neither pointing at the other)."""
    reason = f": {report.why_nothing_is_left()}" if report is not None else ""
    return DataError(
        f"{where}: no customer has a purchase"
        + (f" before the snapshot date {options.snapshot}" if options.snapshot else "")
        + f" after cleaning{reason}"
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
        raise no_customers(where, options)
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
