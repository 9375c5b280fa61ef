"""From a source (files or an Athena table) and its options to a `Dataset`: the one way every face
gets an RFM table.

Files are read on one embedded DuckDB connection: the log is cleaned once into a temporary table,
then the RFM statement, each customer's country and the date range read that table. Athena runs the
same RFM statement next to the data (only the per-customer table comes back). The dataset carries
what a model must be checked against: its content fingerprint, snapshot and returns policy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rfm.data import columns as C
from rfm.data.cleaning import CleaningReport, cleaning_report
from rfm.data.engine import quote_identifier
from rfm.data.query import (
    RFM_COLUMNS,
    ReturnsPolicy,
    customer_countries_sql,
    kept_summary_sql,
    line_summary_sql,
    rfm_sql,
    rule_totals_sql,
    summary_lines_sql,
)
from rfm.data.sources import (
    SourceOptions,
    excel_to_parquet,
    expand_paths,
    fingerprint,
    is_excel,
    opened_source,
    read_head,
)
from rfm.data.table import RfmOptions, RfmResult, rfm_from_view
from rfm.errors import DataError

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made: `rfm table` writes CSV without it
    import pandas as pd

    from rfm.cloud.athena import AthenaConfig

DEMO_ROWS = 200_000
DEMO_SEED = 7
DEMO_LABEL = "demo data"
UPLOAD_EXTENSIONS: tuple[str, ...] = ("csv", "gz", "tsv", "txt", "xlsx", "xls", "xlsm", "parquet", "pq")
UPLOAD_SESSION_MAX_AGE_HOURS = 24.0
_SESSION_FOLDER = re.compile(r"[0-9a-f]{32}")
_UPLOAD_FILE = re.compile(r"[0-9a-f]{16}-[A-Za-z0-9._-]+")


# --- what is asked for ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """Local files: paths (files, globs or folders), how to read them, and what to call them."""

    paths: tuple[str, ...]
    read: SourceOptions = field(default_factory=SourceOptions)
    label: str = ""

    def describe(self) -> str:
        return self.label or ", ".join(os.path.basename(p.rstrip("/")) or p for p in self.paths)


@dataclass(frozen=True)
class AthenaSource:
    """An Athena table holding the cleaned log (written by `rfm ingest --to s3://...`)."""

    config: AthenaConfig

    def describe(self) -> str:
        return self.config.describe()


Source = FileSource | AthenaSource


@dataclass(frozen=True)
class DatasetRequest:
    """A source and how RFM is computed from it: the snapshot (None: the day after the log ends) and
    the returns policy."""

    source: Source
    snapshot: date | None = None
    returns: ReturnsPolicy = ReturnsPolicy.NET

    def __post_init__(self) -> None:
        object.__setattr__(self, "returns", RfmOptions(returns=self.returns).returns)

    @property
    def options(self) -> RfmOptions:
        return RfmOptions(snapshot=self.snapshot, returns=self.returns)


def file_request(paths: Sequence[str | os.PathLike[str]], read: SourceOptions | None = None, *,
                 snapshot: date | None = None, returns: ReturnsPolicy | str = ReturnsPolicy.NET,
                 label: str = "") -> DatasetRequest:
    """A request for local files (the common case; paths are kept as given)."""
    source = FileSource(tuple(os.fspath(p) for p in paths), read or SourceOptions(), label)
    return DatasetRequest(source, snapshot, ReturnsPolicy(returns))


# --- what comes back -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One customer a row (the RFM columns, plus `country` when the log has one) and its provenance.

    `fingerprint` identifies the content (customers and their figures at this snapshot), not the
    files' names or times, so a model can tell whether it is applied to the data it was trained on.
    `cleaning` is the cleaning report of a file source (None for Athena, whose table was cleaned at
    ingest, and when it was not asked for)."""

    customers: pd.DataFrame
    snapshot: date
    options: RfmOptions
    fingerprint: str
    label: str
    cleaning: CleaningReport | None = None
    first_date: date | None = None
    last_date: date | None = None
    reconciliation: Reconciliation | None = None  # with the cleaning report: raw lines -> the revenue shown

    @property
    def table(self) -> pd.DataFrame:
        """The RFM table alone (the RFM columns, in order)."""
        return self.customers[list(RFM_COLUMNS)]

    @property
    def returns(self) -> ReturnsPolicy:
        return self.options.returns

    @property
    def has_country(self) -> bool:
        return "country" in self.customers.columns and bool(self.customers["country"].notna().any())

    def rfm_result(self) -> RfmResult:
        """The RfmResult a model is trained on (its metadata records snapshot, policy, fingerprint)."""
        return RfmResult(table=self.table, snapshot=self.snapshot, options=self.options, fingerprint=self.fingerprint)


# --- loading -------------------------------------------------------------------------------------


def load_dataset(request: DatasetRequest, *, memory_limit: str | None = None,
                 with_cleaning_report: bool = False) -> Dataset:
    """The dataset a request names: files through the embedded DuckDB, or the Athena table.

    Raises `RfmError` subclasses with one line (file, column, row, value) for bad input."""
    if isinstance(request.source, AthenaSource):
        return _load_athena(request.source, request.options)
    return _load_files(request.source, request.options, memory_limit, with_cleaning_report)


def _load_files(source: FileSource, options: RfmOptions, memory_limit: str | None,
                with_cleaning_report: bool) -> Dataset:
    import pandas as pd

    with opened_source(source.paths, source.read, memory_limit=memory_limit) as (con, loaded):
        raw_view = loaded.view
        source_view = quote_identifier(raw_view)
        report: CleaningReport | None = None
        summarised = not loaded.cleaned
        if summarised:
            # The one de-duplication, kept as a small per-invoice-day summary that the RFM statement, the
            # per-customer extras and (with the report) the cleaning report and the reconciliation read;
            # the report adds the one other pass over the log, the rule totals.
            snapshot = options.snapshot
            con.execute(f"CREATE TEMP TABLE line_summary AS {line_summary_sql(source_view, snapshot)}")
            con.execute(f"CREATE TEMP VIEW cleaned_lines AS {summary_lines_sql('line_summary')}")
            if with_cleaning_report:
                con.execute(f"CREATE TEMP TABLE rule_totals AS {rule_totals_sql(source_view, snapshot)}")
                con.execute(f"CREATE TEMP TABLE kept_summary AS {kept_summary_sql('line_summary')}")
                report = cleaning_report(con, raw_view, snapshot, totals="rule_totals", kept="kept_summary")
            loaded = replace(loaded, view="cleaned_lines", cleaned=True)
        result = rfm_from_view(con, loaded, options, report, raw_view=raw_view)
        reconciliation = (revenue_reconciliation(con, result, report)
                          if report is not None else None)
        if summarised:  # countries from the valid lines, which the row rules keep before the snapshot
            extras = f"""WITH dates AS (
                SELECT customer_id, min(first_time) AS first_date, max(last_time) AS last_date
                FROM cleaned_lines WHERE invoice_date < CAST(? AS DATE) GROUP BY customer_id),
            countries AS (SELECT customer_id, arg_max(country, lines) AS country
                          FROM ({customer_countries_sql(source_view, options.snapshot)}) AS c GROUP BY customer_id)
            SELECT dates.customer_id, countries.country, dates.first_date, dates.last_date
            FROM dates LEFT JOIN countries USING (customer_id)"""
        else:
            extras = (f"SELECT customer_id, mode(country) AS country, min(invoice_date) AS first_date, "
                      f"max(invoice_date) AS last_date FROM {quote_identifier(loaded.view)} "
                      "WHERE CAST(invoice_date AS DATE) < CAST(? AS DATE) GROUP BY customer_id")
        extra = con.execute(extras, [result.snapshot.isoformat()]).df()
    extra["customer_id"] = extra["customer_id"].astype(str)
    customers = result.table.merge(extra[["customer_id", "country"]], on="customer_id", how="left")
    if loaded.mapping.country is None:
        customers = customers.drop(columns="country")
    first = pd.Timestamp(extra["first_date"].min()).date() if len(extra) else None
    last = pd.Timestamp(extra["last_date"].max()).date() if len(extra) else None
    return Dataset(customers=customers, snapshot=result.snapshot, options=options,
                   fingerprint=result.fingerprint, label=source.describe(), cleaning=report,
                   first_date=first, last_date=last, reconciliation=reconciliation)


@dataclass(frozen=True)
class ReconciliationStep:
    """One step from the raw lines' revenue to the figure shown: what it is, how many lines, how much."""

    step: str
    lines: int | None
    revenue: float


@dataclass(frozen=True)
class Reconciliation:
    """The revenue of the raw lines, every step that takes some of it away (a cleaning rule, the
    returns choice, the snapshot, customers without a purchase, rounding), and the revenue shown.

    Why: the raw file sums to more than the dashboard's revenue, and a marketer must be able to see
    where each part went. Every step is measured, not derived, except `rounding`: the RFM table rounds
    each customer's monetary to cents, so the last cents are the difference. The steps add up to
    `shown` exactly (`raw_revenue + sum(step revenues) == shown`, up to float addition)."""

    raw_lines: int
    raw_revenue: float
    steps: tuple[ReconciliationStep, ...]
    shown: float

    def rows(self) -> list[dict[str, object]]:
        """The reconciliation as table rows: raw lines, each step (signed), the revenue shown."""
        out: list[dict[str, object]] = [{"step": "revenue of every line read", "lines": self.raw_lines,
                                         "revenue": self.raw_revenue}]
        out += [{"step": s.step, "lines": s.lines, "revenue": s.revenue} for s in self.steps]
        out.append({"step": "revenue shown", "lines": None, "revenue": self.shown})
        return out

    def csv(self) -> bytes:
        """The reconciliation as CSV (for the Overview's download)."""
        import pandas as pd

        return pd.DataFrame(self.rows()).to_csv(index=False).encode("utf-8")


def revenue_reconciliation(con: object, result: RfmResult, report: CleaningReport) -> Reconciliation:
    """Measure where the raw lines' revenue goes on the way to the RFM table's total monetary.

    Reads the tables `_load_files` made from the log with the request's snapshot (`rule_totals`,
    `kept_summary` and the `cleaned_lines` view of `line_summary`; see rfm.data.query). The row rules
    are `row_rules`' own, counted as the cleaning report counts them (a line under the first rule it
    fails), so a rule added there is a step here without a change; every later step is measured on the
    lines those rules keep. The last step, rounding, is what is left over (the RFM table rounds each
    customer's spend to cents); anything more is named "not explained" so it cannot hide."""
    from rfm.data.cleaning import RULES
    from rfm.data.query import row_rules

    snapshot = result.options.snapshot
    labels = dict(RULES)
    rules = row_rules(snapshot)
    raw = con.execute(  # type: ignore[attr-defined]
        f"SELECT rows_read, raw_revenue, {', '.join(f'{name}_revenue' for name, _ in rules)}, valid_revenue "
        "FROM rule_totals").fetchall()[0]
    lines, total, *by_rule, valid = raw
    kept = con.execute(  # type: ignore[attr-defined]
        "SELECT purchase_revenue + returned_revenue + stock_adjustment_revenue + not_purchase_or_return_revenue, "
        "stock_adjustment_revenue, not_purchase_or_return_revenue, returned_revenue FROM kept_summary").fetchall()[0]
    distinct_revenue, stock, other, returned = kept
    net = result.options.returns == ReturnsPolicy.NET
    counted = "amount" if net else "CASE WHEN amount > 0 THEN amount ELSE 0 END"
    snap = result.snapshot.isoformat()
    after = con.execute(  # type: ignore[attr-defined]
        f"""WITH l AS (SELECT customer_id, amount, invoice_date AS day, lines FROM cleaned_lines),
            buyers AS (SELECT DISTINCT customer_id FROM l WHERE amount > 0 AND day < CAST(? AS DATE))
            SELECT coalesce(sum(lines) FILTER (WHERE day >= CAST(? AS DATE)), 0),
                   coalesce(sum({counted}) FILTER (WHERE day >= CAST(? AS DATE)), 0),
                   coalesce(sum(lines) FILTER (WHERE day < CAST(? AS DATE)
                                               AND customer_id NOT IN (SELECT customer_id FROM buyers)), 0),
                   coalesce(sum({counted}) FILTER (WHERE day < CAST(? AS DATE)
                                                 AND customer_id NOT IN (SELECT customer_id FROM buyers)), 0)
            FROM l""", [snap] * 5).fetchall()[0]
    after_lines, after_revenue, orphan_lines, orphan_revenue = after
    shown = float(result.table["monetary"].sum())
    steps = [ReconciliationStep(f"dropped: {labels.get(name, name.replace('_', ' '))}",
                                int(getattr(report, name, 0) or 0), _taken(amount))
             for (name, _), amount in zip(rules, by_rule, strict=True)]
    steps += [
        ReconciliationStep(f"dropped: {labels.get('duplicate', 'exact duplicate')}", report.duplicate,
                           _taken(float(valid) - float(distinct_revenue))),
        ReconciliationStep(f"dropped: {labels.get('stock_adjustment', 'stock adjustment')}", report.stock_adjustment,
                           _taken(stock)),
        ReconciliationStep(f"dropped: {labels.get('not_purchase_or_return', 'neither purchase nor return')}",
                           report.not_purchase_or_return, _taken(other)),
    ]
    if not net:
        steps.append(ReconciliationStep("returns ignored (the returns choice)", report.return_lines,
                                        _taken(returned)))
    steps += [
        ReconciliationStep(f"lines on or after the snapshot ({snap})", int(after_lines), _taken(after_revenue)),
        ReconciliationStep("returns of customers with no purchase before the snapshot", int(orphan_lines),
                           _taken(orphan_revenue)),
    ]
    rest = round(shown - (float(total) + sum(s.revenue for s in steps)), 2) + 0.0
    # Rounding to cents moves each customer by at most half a cent.
    rounding = abs(rest) <= 0.005 * len(result.table) + 0.01
    steps.append(ReconciliationStep("rounding each customer's spend to cents" if rounding
                                    else "not explained by the steps above", None, rest))
    return Reconciliation(raw_lines=int(lines), raw_revenue=float(total), steps=tuple(steps), shown=shown)


def _taken(amount: object) -> float:
    """Revenue a step takes away, as a negative number (and 0.0, never -0.0, when it takes none)."""
    return -float(amount) + 0.0  # type: ignore[arg-type]


def _load_athena(source: AthenaSource, options: RfmOptions) -> Dataset:
    from rfm.cloud.athena import compute_rfm_athena

    result = compute_rfm_athena(source.config, options)
    return Dataset(customers=result.table, snapshot=result.snapshot, options=options,
                   fingerprint=result.fingerprint, label=source.describe())


def write_rfm_table(request: DatasetRequest, out: str, *, memory_limit: str | None = None) -> int:
    """Write the RFM table as CSV (`-`: standard output); returns the customers written.

    Files go straight from DuckDB to the CSV (no DataFrame on the way: the fast path on large logs);
    Athena's table is written as it comes back."""
    if isinstance(request.source, FileSource):
        from rfm.data.table import write_rfm_csv

        return write_rfm_csv(request.source.paths, out, request.source.read, request.options,
                             memory_limit=memory_limit)
    dataset = load_dataset(request)
    from rfm.data.table import write_frame

    return write_frame(dataset.table, out)  # by extension, like the files' path


def rfm_statement(request: DatasetRequest) -> tuple[str, tuple[str, ...]]:
    """The exact statement `load_dataset` runs for the RFM table, and its bound parameters.

    For files it reads the canonical view the files are loaded into (`source_lines`)."""
    if isinstance(request.source, AthenaSource):
        from rfm.cloud.athena import athena_rfm_query

        query = athena_rfm_query(request.source.config, request.options)
        return query.sql, tuple(query.parameters)
    with opened_source(request.source.paths, request.source.read) as (_, loaded):
        pass  # loading checks the files and tells whether the log was already cleaned by `rfm ingest`
    sql = rfm_sql(quote_identifier(loaded.view), cleaned=loaded.cleaned, snapshot=request.snapshot,
                  returns=request.returns)
    return sql, ()


def write_rows_csv(columns: Sequence[str], rows: Iterable[Sequence[object]], out: str) -> None:
    """Rows as CSV, written as `write_csv` writes a DataFrame of them (None as an empty field, NaN too),
    for answers that need no pandas."""
    import csv
    import math

    def field(value: object) -> object:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value

    def emit(stream: TextIO) -> None:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([field(v) for v in row] for row in rows)

    _write_text(out, emit)


def write_csv(frame: pd.DataFrame, out: str) -> None:
    """A table as CSV in a file, or on standard output for `-`."""
    _write_text(out, lambda stream: frame.to_csv(stream, index=False))


def _write_text(out: str, emit: Callable[[TextIO], object]) -> None:
    """`emit` writes into the file `out` (UTF-8, newlines as written), or standard output for `-`; a file
    that cannot be written is a one-line DataError."""
    import sys

    if out == "-":
        emit(sys.stdout)
        return
    try:
        with open(out, "w", newline="", encoding="utf-8") as stream:
            emit(stream)
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror or exc}") from exc


# --- helpers for the faces: cache keys, demo data, uploads, the column-mapping step ---------------


def source_key(source: FileSource) -> str:
    """A cheap key of files (paths, sizes, modification times, read options) for caching; raises
    DataError for a path that does not exist."""
    return fingerprint(expand_paths(source.paths), source.read)


def ensure_demo(path: str | os.PathLike[str], rows: int = DEMO_ROWS, seed: int = DEMO_SEED) -> Path:
    """The demo log at `path`, generated on first use (a fresh clone has no retailer data)."""
    from rfm.data.demo import write_demo

    out = Path(path)
    if not out.is_file():
        write_demo(out, rows=rows, seed=seed)
    return out


def start_upload_session(root: str | os.PathLike[str], *,
                         max_age_hours: float = UPLOAD_SESSION_MAX_AGE_HOURS) -> Path:
    """The private upload folder of a new dashboard session, `root/<secrets.token_hex(16)>` (created
    with mode 0o700 by the first `save_upload`); first removes the session folders older than
    `max_age_hours`.

    A session's uploads are removed (1) when the next upload of the session replaces them
    (`save_upload`), (2) when the session ends (`end_upload_session`, called by the dashboard's
    janitor), and (3), for a folder a killed server left behind, by the next session to start after
    the folder has not been used for `max_age_hours` (`save_upload` touches the folder on every use,
    so a session that is still working keeps its folder)."""
    remove_stale_uploads(root, max_age_hours=max_age_hours)
    return Path(root) / secrets.token_hex(16)


def end_upload_session(folder: str | os.PathLike[str]) -> bool:
    """Remove a session's upload folder once its session has ended (rfm.dashboard.uploads watches
    for that); returns whether a folder was removed. Only a folder named like `start_upload_session`'s
    and not a symlink is touched, so a wrong path can never delete anything else."""
    import shutil

    path = Path(folder)
    if not _SESSION_FOLDER.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


def remove_stale_uploads(root: str | os.PathLike[str], *, max_age_hours: float = UPLOAD_SESSION_MAX_AGE_HOURS,
                         now: float | None = None) -> int:
    """Remove session upload folders (and files of the older flat layout) unused for `max_age_hours`;
    returns how many were removed. Only names this module makes are touched; errors are ignored."""
    import shutil
    import time

    cutoff = (time.time() if now is None else now) - max_age_hours * 3600
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_symlink() or entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            if entry.is_dir(follow_symlinks=False) and _SESSION_FOLDER.fullmatch(entry.name):
                shutil.rmtree(entry.path)
            elif entry.is_file(follow_symlinks=False) and _UPLOAD_FILE.fullmatch(entry.name):
                os.unlink(entry.path)
            else:
                continue
            removed += 1
        except OSError:
            continue
    return removed


def save_upload(name: str, data: bytes, directory: str | os.PathLike[str], *, max_mb: int | None = None) -> Path:
    """Keep an uploaded file in the session's private folder (created with mode 0o700) under a
    content-hash name, so the same upload maps to the same path and cache key and two different
    uploads never collide; the session's previous upload is removed.

    `max_mb` (settings.upload_max_mb) is checked before anything is written: a larger file is a
    DataError naming the file by the name it was uploaded under (1 MB = 1024 x 1024 bytes, as
    Streamlit's own upload limit).

    A workbook (.xlsx, .xls, ...) is kept as a Parquet copy (`<name>.parquet`, parsed once here;
    see `excel_to_parquet`): its preview, every mapping tried and the load then read the copy. A
    gzipped CSV is kept decompressed (`<name>` without `.gz`, see `_decompress`): read on every core.
    A workbook that cannot be read is a DataError naming the file as uploaded."""
    original = upload_name(name)
    if max_mb is not None and len(data) > max_mb * 1024 * 1024:
        raise DataError(f"{original}: {len(data) / 1024 / 1024:,.1f} MB is over the upload limit of "
                        f"{max_mb} MB (RFM_UPLOAD_MAX_MB)")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", original).strip("._") or "upload.csv"
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = Path(directory)
    out = folder / f"{digest}-{safe}"
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    kept = out.with_name(out.name + ".parquet") if is_excel(out) else out
    plain = out.with_name(out.name[:-3]) if out.name.lower().endswith((".csv.gz", ".tsv.gz", ".txt.gz")) else None
    if plain is not None and plain.is_file():
        kept = plain
    if not kept.is_file():
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        if kept != out:
            try:
                excel_to_parquet(str(out), str(kept))
            except DataError as exc:
                raise DataError(upload_message(str(exc), out, original)) from None
            finally:
                with contextlib.suppress(OSError):
                    out.unlink()
        elif plain is not None and _decompress(out, plain, limit=len(data) * GZIP_EXPANSION_LIMIT):
            out.unlink()
            kept = plain
    for other in folder.iterdir():  # one upload at a time per session: the one it replaces goes
        if other != kept:
            with contextlib.suppress(OSError):
                other.unlink()
    os.utime(folder)  # "still in use", for remove_stale_uploads
    return kept


# An uploaded .csv.gz is kept decompressed when it expands at most this many times (text logs expand
# 5-10x; Online Retail 6.3x): DuckDB reads a plain CSV on every core, a gzip stream on one.
GZIP_EXPANSION_LIMIT = 20


def _decompress(gz: Path, out: Path, *, limit: int) -> bool:
    """Write the gzip file `gz` decompressed to `out` (atomically) and return True; False, with nothing
    written, when it would be larger than `limit` bytes (a gzip bomb stays compressed and is read as it
    is) or is not a readable gzip stream (the reader then says what is wrong with it)."""
    import gzip
    import zlib

    tmp = out.with_name(f".{out.name}.tmp")
    written = 0
    try:
        with gzip.open(gz, "rb") as source, open(tmp, "wb") as target:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise ValueError("expands too much")
                target.write(chunk)
        os.replace(tmp, out)
        return True
    except (OSError, EOFError, zlib.error, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False


def upload_name(name: str) -> str:
    """The name a file was uploaded under, as messages show it (no folders)."""
    return os.path.basename(name.replace("\\", "/")) or "upload"


def upload_message(message: str, stored: str | os.PathLike[str], original: str) -> str:
    """A message about an uploaded file with its server path, in any spelling (as stored, absolute,
    resolved, its file name) replaced by the name the user uploaded it under, and its folder dropped."""
    path = os.fspath(stored)
    files = {path, os.path.abspath(path), os.path.realpath(path)}
    folders = {os.path.dirname(f) for f in files if os.path.dirname(f)}
    for spelling in sorted(files, key=len, reverse=True):
        message = message.replace(spelling, original)
    message = message.replace(os.path.basename(path), original)
    for folder in sorted(folders, key=len, reverse=True):
        message = message.replace(folder + os.sep, "").replace(folder, "(upload folder)")
    return message


@dataclass(frozen=True)
class MappingCheck:
    """Whether a file's headers are recognised; if not, what the user must map and a preview."""

    columns: list[str]
    head: pd.DataFrame
    error: str | None
    guess: dict[str, str | None] = field(default_factory=dict)

    @property
    def needs_mapping(self) -> bool:
        return self.error is not None


def check_mapping(path: str, mapping: Mapping[str, str] | None = None, rows: int = 5) -> MappingCheck:
    """Read the first rows of `path` and try to resolve its headers (with the user's mapping)."""
    head = read_head(path, rows)
    columns = [str(c) for c in head.columns]
    guess = guess_mapping(columns)
    try:
        C.resolve_mapping(columns, mapping, where=os.path.basename(path))
    except DataError as exc:
        return MappingCheck(columns, head, str(exc), guess)
    return MappingCheck(columns, head, None, guess)


def guess_mapping(columns: Sequence[str]) -> dict[str, str | None]:
    """The recognised header for each canonical column (None where nothing matched)."""
    by_key = {C.normalise_header(c): c for c in reversed(list(columns))}
    guess: dict[str, str | None] = {}
    for canonical in C.CANONICAL_COLUMNS:
        keys = (C.normalise_header(canonical), *C.KNOWN_HEADERS[canonical])
        guess[canonical] = next((by_key[k] for k in keys if k in by_key), None)
    return guess


def mapping_from_choices(choices: Mapping[str, str | None]) -> dict[str, str]:
    """The user's choices in a mapping form, without the empty ones."""
    return {canonical: source for canonical, source in choices.items() if source}
