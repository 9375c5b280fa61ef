"""Reading transaction logs (CSV, Excel, Parquet) into one canonical DuckDB view.

`load_source` takes the user's paths (files, globs, Hive-partitioned folders), checks that each file
is what its extension says, reads it through DuckDB (Excel through fastexcel, since DuckDB's
own Excel support is an extension that cannot be downloaded here), maps the headers onto canonical
columns, converts types with a clear error for the first bad value, and registers a view with:

    customer_id VARCHAR, invoice_id VARCHAR, invoice_date TIMESTAMP, quantity DOUBLE,
    unit_price DOUBLE, amount DOUBLE, country VARCHAR, _customer_key (an integer type or VARCHAR),
    _invoice_key UBIGINT, _cancellation BOOLEAN, _line_hash UBIGINT

`_customer_key` is what the large aggregations group by: the source's integer id where the column
holds integers, else `customer_id` itself; `CAST(_customer_key AS VARCHAR) = customer_id` always.
`_invoice_key` (UBIGINT) is a 64-bit hash of `invoice_id`, for queries that only group by invoice.

`_line_hash` is a 64-bit hash of every source column but the customer (invoice, stock code,
description, ...), so that "exact duplicate line" (identical in every column of the source) is a
narrow, engine-neutral key in the RFM query: same customer and same line hash.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from rfm.data import columns as C
from rfm.data.columns import ColumnMapping, resolve_mapping
from rfm.data.engine import connect, first_row, quote_literal
from rfm.data.engine import quote_identifier as q
from rfm.errors import DataError, first_line, short_repr

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

CLEANED_MARKER_KEY = "rfm_cleaned"
# A bad value quoted in an error is cut to this many characters (repr: control characters escaped).
VALUE_EXAMPLE_CHARS = 40
CLEANED_MARKER_VALUE = "v1"

PARQUET_EXTENSIONS = (".parquet", ".pq", ".parq")
EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", ".gz")

# Tried in order on text dates; the first under which every value parses is used for the column.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
)

_INTEGER_TYPES = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT",
                  "UTINYINT")

# The column that names each line's file when several files are read as one relation.
FILE_COLUMN = "_rfm_source_file"
_MAGIC_PARQUET = b"PAR1"
_MAGIC_ZIP = b"PK\x03\x04"
_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_OLE = b"\xd0\xcf\x11\xe0"
# The smallest Parquet file: "PAR1", the footer (at least a few bytes), its 4-byte length, "PAR1".
_MIN_PARQUET_BYTES = 12


@dataclass(frozen=True)
class SourceOptions:
    """How to read the files: column mapping, CSV delimiter, Excel sheet."""

    mapping: Mapping[str, str] | None = None
    delimiter: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class LoadedSource:
    """A transaction log registered in a DuckDB connection as a canonical view."""

    view: str
    files: tuple[str, ...]
    mapping: ColumnMapping
    cleaned: bool
    fingerprint: str
    has_invoice_ids: bool


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files behind the user's paths: a file, a glob, or a (Hive-partitioned) folder of files.

    A path that names an existing file is that file, even when its name holds glob characters
    (`sales [2011].csv`); each file is listed once, however many paths name it."""
    files: list[str] = []
    seen: set[str] = set()

    def add(found: Iterable[str]) -> None:
        for file in found:
            key = os.path.normcase(os.path.abspath(file))
            if key not in seen:
                seen.add(key)
                files.append(file)

    for raw in paths:
        path = os.fspath(raw)
        try:
            if os.path.isdir(path):
                found = sorted(
                    str(p)
                    for p in Path(path).rglob("*")
                    if p.is_file() and _extension(str(p)) in PARQUET_EXTENSIONS + CSV_EXTENSIONS + EXCEL_EXTENSIONS
                )
                if not found:
                    raise DataError(f"{path}: folder holds no CSV, Excel or Parquet files")
                add(found)
            elif os.path.isfile(path):
                add([path])
            elif glob.has_magic(path):
                found = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
                if not found:
                    raise DataError(f"{path}: no file matches this pattern")
                add(found)
            else:
                raise DataError(f"{path}: no such file or folder")
        except OSError as exc:
            raise DataError(f"{path}: cannot be listed: {exc.strerror or type(exc).__name__}") from None
    return files


def duckdb_path(path: str) -> str:
    """A file name as DuckDB's readers take it: DuckDB expands glob characters in every name it is
    given, so they are escaped (`a*.parquet` would also match `ab.parquet`)."""
    return glob.escape(path)


def detect_format(path: str) -> str:
    """'parquet', 'excel' or 'csv', from the extension, checked against the file's first bytes (and,
    for Parquet, its last: a file cut short has no footer)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            size = os.fstat(handle.fileno()).st_size
            tail = b""
            if head.startswith(_MAGIC_PARQUET) and size >= len(_MAGIC_PARQUET) * 2:
                handle.seek(size - len(_MAGIC_PARQUET))
                tail = handle.read(len(_MAGIC_PARQUET))
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror or type(exc).__name__}") from None
    if not head:
        raise DataError(f"{path}: the file is empty")
    ext = _extension(path)
    content = _content_kind(head)
    declared = (
        "parquet"
        if ext in PARQUET_EXTENSIONS
        else "excel"
        if ext in EXCEL_EXTENSIONS
        else "csv"
        if ext in CSV_EXTENSIONS
        else None
    )
    if declared is None:
        return content if content != "gzip" else "csv"
    if declared == "parquet" and content != "parquet":
        raise DataError(f"{path}: extension says Parquet but the file is {_describe(content)}")
    truncated = size < _MIN_PARQUET_BYTES or tail != _MAGIC_PARQUET
    if content == "parquet" and declared in ("parquet", None) and truncated:
        raise DataError(f"{path}: not a complete Parquet file ({size:,} bytes, no Parquet footer at the end: "
                        "truncated or damaged?)")
    if declared == "excel" and content not in ("zip", "ole"):
        raise DataError(f"{path}: extension says Excel but the file is {_describe(content)}")
    if declared == "csv":
        if ext.endswith(".gz") and content != "gzip":
            raise DataError(f"{path}: extension says gzip but the file is {_describe(content)}")
        if not ext.endswith(".gz") and content not in ("csv",):
            raise DataError(f"{path}: extension says CSV but the file is {_describe(content)}")
    return declared


@contextmanager
def opened_source(
    paths: Sequence[str | os.PathLike[str]],
    options: SourceOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, LoadedSource]]:
    """A fresh connection with the log at `paths` loaded as the canonical view, closed on exit: the one
    way every job (table, ingest, upload, dataset) opens a log."""
    con = connect(memory_limit)
    try:
        yield con, load_source(con, paths, options)
    finally:
        con.close()


def load_source(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | os.PathLike[str]],
    options: SourceOptions | None = None,
    view: str = "source_lines",
) -> LoadedSource:
    """Register `view` in `con` with the canonical columns of the log at `paths`."""
    options = options or SourceOptions()
    files = expand_paths(paths)
    if not files:
        raise DataError("no input files given")
    groups = _file_groups(con, files)

    parts: list[str] = []
    mapping: ColumnMapping | None = None
    cleaned_flags: list[bool] = []
    for index, ((fmt, _header), group) in enumerate(groups.items()):
        raw_name = f"_raw_{view}_{index}"
        cleaned = fmt == "parquet" and _is_cleaned_parquet(con, group)
        cleaned_flags.append(cleaned)
        _register_raw(con, fmt, group, options, raw_name, number_rows=cleaned, file_column=len(group) > 1)
        where = group[0] if len(group) == 1 else f"{group[0]} (and {len(group) - 1} more)"
        raw_columns = [c for c in _columns_of(con, raw_name) if c != FILE_COLUMN]
        part_mapping = resolve_mapping(raw_columns, options.mapping, where=where)
        if mapping is not None and part_mapping.uses_amount != mapping.uses_amount:
            raise DataError(f"{where}: has other revenue columns than {files[0]}; give one kind of file")
        mapping = mapping or part_mapping
        file_expr = (q("filename") if cleaned else q(FILE_COLUMN)) if len(group) > 1 else quote_literal(group[0])
        part = _canonical_select(con, raw_name, raw_columns, part_mapping, fmt, group, cleaned,
                                 file_expr=file_expr, canonical_hash=len(groups) > 1)
        if fmt == "csv":
            # The text converted once, now that the checks passed: the dashboard reads a log three times
            # (rule totals, de-duplication, countries), and parsing dates and numbers from text each time
            # cost more than this copy (Online Retail's csv.gz: 1.8 s of those passes against 0.4 s).
            typed = f"_typed_{view}_{index}"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {q(typed)} AS {part}")
            con.execute(f"DROP TABLE {q(raw_name)}")
            part = f"SELECT * FROM {q(typed)}"
        parts.append(part)

    assert mapping is not None
    if len(set(cleaned_flags)) > 1:
        raise DataError("cannot mix logs cleaned by `rfm ingest` with raw logs in one run")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {q(view)} AS " + " UNION ALL BY NAME ".join(parts))
    count = first_row(con.execute(f"SELECT count(*) FROM {q(view)}"))
    if not count or count[0] == 0:
        raise DataError(f"{files[0]}: the file has a header but no data rows")
    return LoadedSource(
        view=view,
        files=tuple(files),
        mapping=mapping,
        cleaned=cleaned_flags[0],
        fingerprint=fingerprint(files, options),
        has_invoice_ids=mapping.invoice_id is not None,
    )


def _file_groups(con: duckdb.DuckDBPyConnection, files: list[str]) -> dict[tuple[str, str], list[str]]:
    """The files grouped by format and header, in the order given: each group is read as one relation
    and mapped on its own, so two years of a log whose headers differ (`Invoice`/`Price`/`Customer ID`
    against `InvoiceNo`/`UnitPrice`/`CustomerID`) are each mapped and then combined."""
    formats = {file: detect_format(file) for file in files}
    parquet_keys = _parquet_header_keys(con, [f for f, fmt in formats.items() if fmt == "parquet"])
    groups: dict[tuple[str, str], list[str]] = {}
    for file, fmt in formats.items():
        key = parquet_keys.get(file, "") if fmt == "parquet" else _header_key(fmt, file)
        groups.setdefault((fmt, key), []).append(file)
    return groups


def _parquet_header_keys(con: duckdb.DuckDBPyConnection, files: list[str]) -> dict[str, str]:
    """Each Parquet file's sorted, normalised column names, from one schema query over all of them (a
    Hive folder may hold thousands of files). Unreadable files get no key: `_register_raw` says why."""
    if len(files) < 2:
        return {}  # one file is one group whatever its header
    try:
        paths = [duckdb_path(f) for f in files]
        rows = con.execute("SELECT file_name, name FROM parquet_schema(?)", [paths]).fetchall()
    except duckdb.Error:
        return {}
    names: dict[str, list[str]] = {}
    for file, name in rows:
        names.setdefault(str(file), []).append(C.normalise_header(str(name)))
    return {file: "|".join(sorted(found)) for file, found in names.items()}


def _header_key(fmt: str, file: str) -> str:
    """What makes two files of one format readable as one relation besides Parquet (see
    `_parquet_header_keys`): a CSV's first line; every Excel file is read on its own (its sheets are
    stacked by `_read_excel`)."""
    if fmt == "csv":
        opener = gzip.open if _extension(file).endswith(".gz") else open
        try:
            with opener(file, "rb") as handle:
                first = handle.readline(65536)
        except (OSError, EOFError, zlib.error):
            return ""
        return first.decode("utf-8", errors="replace").strip().lower()
    return file


def fingerprint(files: Sequence[str], options: SourceOptions | None = None) -> str:
    """Identifies the data cheaply (paths, sizes, modification times, read options) for caching."""
    digest = hashlib.sha256()
    for file in files:
        stat = os.stat(file)
        digest.update(f"{os.path.abspath(file)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    if options is not None:
        digest.update(repr((sorted((options.mapping or {}).items()), options.delimiter, options.sheet)).encode())
    return digest.hexdigest()[:16]


# --- reading the raw files ---------------------------------------------------------------------


def _register_raw(
    con: duckdb.DuckDBPyConnection,
    fmt: str,
    files: list[str],
    options: SourceOptions,
    name: str,
    number_rows: bool = False,
    file_column: bool = False,
    limit: int | None = None,
) -> None:
    """A view of the files as they are. `number_rows` adds file name and row number columns, which
    makes every line distinct: a log cleaned by `rfm ingest` is de-duplicated already. `file_column`
    adds each line's file as FILE_COLUMN (several files read as one relation). `limit`: only the first
    lines are wanted (a preview: a CSV is not parsed whole)."""
    file_list = "[" + ", ".join(quote_literal(duckdb_path(f)) for f in files) + "]"
    named = f", filename = {quote_literal(FILE_COLUMN)}" if file_column else ""
    try:
        if fmt == "parquet":
            numbering = ", filename = true, file_row_number = true" if number_rows else named
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {q(name)} AS SELECT * FROM read_parquet({file_list}, "
                f"hive_partitioning = true, union_by_name = true{numbering})"
            )
        elif fmt == "csv":
            for file in files:
                _check_text(file)
            delim = f", delim = {quote_literal(options.delimiter)}" if options.delimiter else ""
            # Parsed once into a temporary table: type detection and checks then scan memory, not text.
            union = ", union_by_name = true" if len(files) > 1 else ""  # it sniffs twice: a preview 0.5 s, not 0.25
            first = f" LIMIT {int(limit)}" if limit is not None else ""
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {q(name)} AS SELECT * FROM read_csv({file_list}, "
                f"header = true, all_varchar = true{union}{delim}{named}){first}"
            )
        else:
            frame = _read_excel(files, options.sheet)
            con.register(name + "_df", frame)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS SELECT * FROM {q(name + '_df')}")
        con.execute(f"SELECT * FROM {q(name)} LIMIT 0").fetchall()  # a result left open blocks register()
    except duckdb.Error as exc:
        raise DataError(f"{files[0]}: cannot be read as {fmt.upper()}: {first_line(exc)}") from exc


def _read_excel(files: list[str], sheet: str | None) -> pa.Table:
    """Every sheet whose header holds a customer column (or just `sheet`), stacked.

    fastexcel (calamine in Rust, straight to Arrow): the 24 MB Online Retail workbook in 4 s, where
    pandas' calamine reader took 12 s building Python objects. Each column's type is inferred from all
    of its rows (`schema_sample_rows=None`): inferred from the first rows only, a later cell of another
    type (an invoice "C536379" below numbers) would be read as empty. A column of mixed cells is read
    as text, which the readers parse as they parse a CSV's."""
    import fastexcel
    import pyarrow as pa

    tables: list[pa.Table] = []
    for file in files:
        try:
            reader = fastexcel.read_excel(file)
            names = list(reader.sheet_names)
            if sheet and sheet not in names:
                raise DataError(f"{file}: no sheet named {sheet!r} (sheets: {', '.join(map(repr, names))})")
            loaded = [pa.Table.from_batches([reader.load_sheet(name, schema_sample_rows=None,
                                                               dtype_coercion="coerce").to_arrow()])
                      for name in ([sheet] if sheet else names)]
        except DataError:
            raise
        except BaseException as exc:  # fastexcel's own errors, and a Rust panic on a broken workbook
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise DataError(f"{file}: cannot be read as Excel: {first_line(exc)}") from None
        usable = [table for table in loaded if _has_customer_column(table.column_names)] or loaded[:1]
        tables.extend(usable)
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # one column typed differently in two sheets: as text
        return pa.concat_tables([_as_text(t) for t in tables], promote_options="permissive")


def _as_text(table: pa.Table) -> pa.Table:
    """Every column as text (dates as ISO text, which the date reader parses)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa.table({name: pc.cast(table[name], pa.string()) for name in table.column_names})


def is_excel(path: str | os.PathLike[str]) -> bool:
    """An Excel workbook by its name (what `detect_format` reads as Excel)."""
    return _extension(os.fspath(path)) in EXCEL_EXTENSIONS


def excel_to_parquet(path: str, out: str, sheet: str | None = None) -> int:
    """The lines of a workbook (the sheets `_read_excel` takes) as a Parquet file at `out`, written
    atomically; returns the rows written. Why: parsing a workbook is slow (seconds for half a million
    lines) and Parquet is read in a fraction of that, so a workbook read many times (the dashboard's
    upload: preview, each mapping tried, the load) is parsed once. The copy holds what DuckDB reads from
    the parsed workbook, so every later read sees the same columns, types and values."""
    detect_format(path)  # a workbook in name only is refused in the readers' words
    frame = _read_excel([path], sheet)
    tmp = f"{out}.{os.getpid()}.tmp"
    con = connect()
    try:
        con.register("_workbook", frame)
        row = first_row(con.execute(f"COPY (SELECT * FROM _workbook) TO {quote_literal(tmp)} (FORMAT parquet)"))
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot be read as EXCEL: {first_line(exc)}") from exc
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror or type(exc).__name__}") from None
    finally:
        con.close()
        with suppress(OSError):
            os.unlink(tmp)
    return int(row[0]) if row else 0


def _has_customer_column(names: Iterable[object]) -> bool:
    keys = {C.normalise_header(str(n)) for n in names}
    return bool(keys & set((C.normalise_header(C.CUSTOMER_ID), *C.KNOWN_HEADERS[C.CUSTOMER_ID])))


def _check_text(path: str) -> None:
    """A CSV must be text: NUL bytes mean a binary file with a CSV name."""
    opener = gzip.open if _extension(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(65536)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # a .gz that is not gzip, cut short or damaged
        raise DataError(f"{path}: cannot be read: not a complete gzip file ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from exc
    if not head.strip():
        raise DataError(f"{path}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{path}: extension says CSV but the file holds binary data")


def _is_cleaned_parquet(con: duckdb.DuckDBPyConnection, files: list[str]) -> bool:
    try:
        rows = con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [duckdb_path(files[0])]).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{files[0]}: cannot be read as PARQUET: {first_line(exc)}") from None
    return any(
        k == CLEANED_MARKER_KEY.encode() and v == CLEANED_MARKER_VALUE.encode() for k, v in rows
    )


def _columns_of(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {q(name)}").fetchall()]


def _types_of(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {q(name)}").fetchall()}


# --- canonical columns and typed conversion -----------------------------------------------------


def _canonical_select(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    raw_columns: list[str],
    mapping: ColumnMapping,
    fmt: str,
    files: list[str],
    cleaned: bool = False,
    *,
    file_expr: str = "NULL::VARCHAR",
    canonical_hash: bool = False,
) -> str:
    """The canonical columns of one group of files, plus `_cancellation`, `_line_hash` and `_file`.

    `_line_hash` identifies a line by every source column but the customer. Within one group the raw
    columns are hashed as they are; with several groups (formats or headers) the values are hashed
    after conversion (`canonical_hash`), so the same line in a CSV and in a Parquet file, or under
    two headers, has the same hash and is counted once."""
    types = _types_of(con, raw)
    locate = _Locator(con, raw, fmt, files)
    checks: list[_Check] = []
    exprs: dict[str, str] = {}
    exprs[C.CUSTOMER_ID] = _customer_expr(mapping.customer_id, types[mapping.customer_id], checks)
    exprs[C.INVOICE_DATE] = _date_expr(con, raw, mapping.invoice_date, types[mapping.invoice_date], locate, checks)
    for canonical in (C.QUANTITY, C.UNIT_PRICE, C.AMOUNT):
        source = getattr(mapping, canonical)
        exprs[canonical] = (
            _number_expr(con, raw, source, types[source], locate, checks) if source is not None else "NULL::DOUBLE"
        )
    _run_checks(con, raw, checks, locate)
    if mapping.amount is None:
        exprs[C.AMOUNT] = f"({exprs[C.QUANTITY]}) * ({exprs[C.UNIT_PRICE]})"
    if mapping.invoice_id is not None:
        text = f"CAST({q(mapping.invoice_id)} AS VARCHAR)"
        # trim() only where there is something to trim: it copies every string, and logs are large.
        # `text < '!'` for "starts with a space" (see the cancellation below; trim changes nothing on the
        # other texts it lets through).
        exprs[C.INVOICE_ID] = (
            f"NULLIF(CASE WHEN {text} < '!' OR ends_with({text}, ' ') THEN trim({text}) "
            f"ELSE {text} END, '')"
        )
        # In a cleaned log every negative line is a return (invoice ids may be derived ones). Otherwise the
        # (trimmed) invoice id starts with C or c, tested on the raw text: the trimmed id's expression,
        # inlined into every filter that reads `_cancellation`, was a third of the raw table's time.
        # Prefixes as byte-wise ranges (`C` <= text < `D` is "starts with C"; text < '!' holds for every
        # text starting with a space, and for the others, which start with a control character or are
        # empty, ltrim (spaces only) changes nothing and no C follows): DuckDB compares a string's first
        # bytes in place, so the raw 10M table took 1.03-1.08 s instead of 1.19-1.26 s with starts_with.
        cancellation = (
            f"({exprs[C.AMOUNT]}) < 0" if cleaned
            else f"CASE WHEN {text} < '!' THEN starts_with(lower(ltrim({text})), 'c') "
                 f"ELSE ({text} >= 'C' AND {text} < 'D') OR ({text} >= 'c' AND {text} < 'd') END"
        )
    else:
        # Without invoice ids an invoice is a customer's purchases on one day, and a negative line is
        # a return (nothing marks cancellation invoices).
        exprs[C.INVOICE_ID] = f"({exprs[C.CUSTOMER_ID]}) || '/' || strftime({exprs[C.INVOICE_DATE]}, '%Y-%m-%d')"
        cancellation = f"({exprs[C.AMOUNT]}) < 0"
    exprs[C.COUNTRY] = (
        f"NULLIF(trim(CAST({q(mapping.country)} AS VARCHAR)), '')" if mapping.country else "NULL::VARCHAR"
    )
    line_columns = [c for c in raw_columns if c != mapping.customer_id]
    if canonical_hash and not cleaned:
        mapped = {getattr(mapping, name) for name in C.CANONICAL_COLUMNS} - {None}
        others = sorted((c for c in line_columns if c not in mapped), key=C.normalise_header)
        hashed = [exprs[name] for name in (C.INVOICE_ID, C.INVOICE_DATE, C.QUANTITY, C.UNIT_PRICE, C.AMOUNT,
                                           C.COUNTRY)]
        hashed += [f"CAST({q(c)} AS VARCHAR)" for c in others]
        line_hash = f"hash({', '.join(hashed)})"
    else:
        line_hash = f"hash({', '.join(q(c) for c in line_columns)})"
    select = ", ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    return (
        f"SELECT {select}, {_customer_key_expr(mapping.customer_id, types[mapping.customer_id], exprs)} AS "
        f"_customer_key, hash({exprs[C.INVOICE_ID]}) AS _invoice_key, "
        f"coalesce({cancellation}, false) AS _cancellation, {line_hash} AS _line_hash, {file_expr} AS _file "
        f"FROM {q(raw)}"
    )


def _customer_key_expr(column: str, dtype: str, exprs: Mapping[str, str]) -> str:
    """The customer as the aggregations group it: the source's own integer when the column holds
    integers (grouping 10 million lines by an integer instead of its text halves the de-duplication),
    the canonical text otherwise. `CAST(_customer_key AS VARCHAR)` is always `customer_id`."""
    return q(column) if dtype in _INTEGER_TYPES else f"({exprs[C.CUSTOMER_ID]})"


@dataclass(frozen=True)
class _Check:
    """A text column converted with `failed` true on values that do not convert."""

    column: str
    failed: str
    expected: str


def _run_checks(con: duckdb.DuckDBPyConnection, raw: str, checks: list[_Check], locate: _Locator) -> None:
    """One scan over the whole log for every text column's conversion; the first failure is raised."""
    if not checks:
        return
    counts = first_row(con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {c.failed})" for c in checks) + f" FROM {q(raw)}"
    ))
    assert counts is not None
    for check, count in zip(checks, counts, strict=True):
        if count:
            value, row = locate.first(check.failed, check.column)
            raise DataError(
                f"{locate.where(row)}: column {check.column!r} holds a value that is not {check.expected}: "
                f"{short_repr(value, VALUE_EXAMPLE_CHARS)} ({count:,} such value{'s' if count != 1 else ''})"
            )


def _sample(raw: str, text: str, size: int = 20_000) -> str:
    return f"(SELECT v FROM (SELECT {text} AS v FROM {q(raw)}) WHERE v IS NOT NULL LIMIT {size})"


# Numeric customer ids print as integers up to this size (a BIGINT holds 9.2e18); beyond, or infinite,
# they are not ids but broken values (a NaN is a missing id).
MAX_NUMERIC_CUSTOMER_ID = 1e18


def _customer_expr(column: str, dtype: str, checks: list[_Check]) -> str:
    col = q(column)
    if dtype in ("DOUBLE", "FLOAT", "REAL") or dtype.startswith("DECIMAL"):
        # Excel and pandas turn integer ids into floats (17850.0): print them as integers again.
        number = f"CAST({col} AS DOUBLE)"
        checks.append(_Check(column, f"{col} IS NOT NULL AND NOT isnan({number}) "
                                     f"AND NOT abs({number}) < {MAX_NUMERIC_CUSTOMER_ID:.0e}",
                             f"a customer id (a finite number below {MAX_NUMERIC_CUSTOMER_ID:.0e})"))
        return (
            f"CASE WHEN isnan({number}) THEN NULL "
            f"WHEN {col} = trunc({col}) THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({col} AS VARCHAR) END"
        )
    if dtype in _INTEGER_TYPES:
        return f"CAST({col} AS VARCHAR)"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    return f"CASE WHEN {text} LIKE '%.0' THEN regexp_replace({text}, '\\.0+$', '') ELSE {text} END"


def _date_expr(
    con: duckdb.DuckDBPyConnection, raw: str, column: str, dtype: str, locate: _Locator, checks: list[_Check]
) -> str:
    """Dates as TIMESTAMP; a text column's format is chosen on a sample, then checked on every row."""
    col = q(column)
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    if dtype != "VARCHAR":
        example = first_row(con.execute(f"SELECT {col} FROM {q(raw)} WHERE {col} IS NOT NULL LIMIT 1"))
        raise DataError(
            f"{locate.where()}: column {column!r} should hold dates but holds {dtype} values "
            f"(e.g. {short_repr(example[0] if example else None, VALUE_EXAMPLE_CHARS)})"
        )
    text = f"NULLIF(trim({col}), '')"
    candidates = ["TRY_CAST({v} AS TIMESTAMP)"] + [
        f"try_strptime({{v}}, {quote_literal(fmt)})" for fmt in DATE_FORMATS
    ]
    def failures(chosen: list[str]) -> tuple[int, ...]:
        counts = first_row(con.execute("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE {c.format(v='v')} IS NULL)" for c in chosen) + f" FROM {_sample(raw, text)}"))
        assert counts is not None
        return tuple(counts)

    # The first candidate wins every tie, so when it reads the whole sample the others need no trial
    # (ISO dates, the common case: a tenth of the time of trying every format).
    counts = failures(candidates[:1])
    if counts[0] > 0:
        counts = failures(candidates)
    best = min(range(len(counts)), key=lambda i: (counts[i], i))
    expr = candidates[best].format(v=text)
    checks.append(_Check(column, f"{text} IS NOT NULL AND {expr} IS NULL",
                         "a date (expected e.g. 2011-12-09 12:50:00 or 12/9/2011 12:50)"))
    return expr


def _number_expr(
    con: duckdb.DuckDBPyConnection, raw: str, column: str, dtype: str, locate: _Locator, checks: list[_Check]
) -> str:
    col = q(column)
    if dtype in _INTEGER_TYPES or dtype in ("DOUBLE", "FLOAT", "REAL") or dtype.startswith("DECIMAL"):
        return f"CAST({col} AS DOUBLE)"
    if dtype == "BOOLEAN" or dtype.startswith("TIMESTAMP") or dtype == "DATE":
        raise DataError(f"{locate.where()}: column {column!r} should hold numbers but holds {dtype} values")
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    plain = f"TRY_CAST({text} AS DOUBLE)"
    comma = f"TRY_CAST(replace({text}, ',', '.') AS DOUBLE)"
    counts = first_row(con.execute(
        "SELECT count(*) FILTER (WHERE TRY_CAST(v AS DOUBLE) IS NULL), "
        f"count(*) FILTER (WHERE TRY_CAST(replace(v, ',', '.') AS DOUBLE) IS NULL) FROM {_sample(raw, text)}"
    ))
    assert counts is not None
    # Decimal commas (as European spreadsheets write them) only when they explain the sample better.
    expr = comma if counts[0] > 0 and counts[1] < counts[0] else plain
    checks.append(_Check(column, f"{text} IS NOT NULL AND {expr} IS NULL", "a number"))
    return expr


class _Locator:
    """Finds the file and row of a bad value, only on the error path (it rescans the file)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, raw: str, fmt: str, files: list[str]):
        self.con, self.raw, self.fmt, self.files = con, raw, fmt, files

    def where(self, row: tuple[str, int | None] | None = None) -> str:
        if row is None:
            return self.files[0] if len(self.files) == 1 else f"{self.files[0]} (and {len(self.files) - 1} more)"
        file, number = row
        return f"{file}, row {number}" if number is not None else file

    def first(self, predicate: str, column: str) -> tuple[object, tuple[str, int | None]]:
        found = first_row(self.con.execute(f"SELECT {q(column)} FROM {q(self.raw)} WHERE {predicate} LIMIT 1"))
        value = found[0] if found else None
        return value, self._row_of(column, value)

    def _row_of(self, column: str, value: object) -> tuple[str, int | None]:
        """Data row number (1 = first row under the header) of the first line holding `value`."""
        for file in self.files:
            if self.fmt == "csv":
                number = _csv_row_of(file, column, value)
            elif self.fmt == "parquet":
                hit = first_row(self.con.execute(
                    f"SELECT file_row_number FROM read_parquet(?, file_row_number = true) "
                    f"WHERE CAST({q(column)} AS VARCHAR) = CAST(? AS VARCHAR) ORDER BY 1 LIMIT 1",
                    [duckdb_path(file), value],
                ))
                number = hit[0] + 1 if hit else None
            else:
                number = None
            if number is not None:
                return file, number
        return self.where(), None


def _csv_row_of(file: str, column: str, value: object) -> int | None:
    opener = gzip.open if _extension(file).endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(65536)
        handle.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(handle, dialect=dialect)
        for number, record in enumerate(reader, start=1):
            if record.get(column) is not None and record[column].strip() == str(value).strip():
                return number
    return None


def _extension(path: str) -> str:
    name = os.path.basename(path).lower()
    for ext in sorted(PARQUET_EXTENSIONS + EXCEL_EXTENSIONS + CSV_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return os.path.splitext(name)[1]


def _content_kind(head: bytes) -> str:
    if head.startswith(_MAGIC_PARQUET):
        return "parquet"
    if head.startswith(_MAGIC_ZIP):
        return "zip"
    if head.startswith(_MAGIC_GZIP):
        return "gzip"
    if head.startswith(_MAGIC_OLE):
        return "ole"
    if b"\x00" in head:
        return "binary"
    return "csv"


def _describe(kind: str) -> str:
    return {
        "parquet": "a Parquet file",
        "zip": "a zip archive (an Excel .xlsx workbook?)",
        "gzip": "gzip-compressed",
        "ole": "an old Excel (.xls) workbook",
        "binary": "binary data",
        "csv": "text (CSV?)",
    }[kind]


def read_head(path: str, rows: int = 5) -> pd.DataFrame:
    """The first rows of any supported file, as the dashboard's column-mapping step shows them."""
    fmt = detect_format(path)
    con = connect()  # the project's settings: no extension downloads
    try:
        _register_raw(con, fmt, [path], SourceOptions(), "_head", limit=rows)
        return con.execute(f"SELECT * FROM {q('_head')} LIMIT {int(rows)}").df()
    finally:
        con.close()


__all__ = [
    "LoadedSource",
    "SourceOptions",
    "detect_format",
    "expand_paths",
    "fingerprint",
    "load_source",
    "read_head",
]
