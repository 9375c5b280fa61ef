"""The Athena source: the RFM query pushed down to Amazon Athena (engine v3), the table read back.

The log lives in S3 as the cleaned Parquet written by `rfm ingest --to s3://...` (canonical columns,
partitioned by year and month) behind an external table (`rfm athena ddl`). Athena runs the one RFM
statement of rfm/data/query.py, rendered by rfm/cloud/dialects.py; only the per-customer table comes back.

Safety: database, table and column names are checked against a strict identifier pattern before
they reach SQL (a column mapping is user input); values (the snapshot date) travel as Athena
execution parameters; credentials are never read or stored here: boto3's normal chain (environment,
~/.aws, SSO, instance or task role) supplies them.

Configuration: `athena_config(settings)` turns the athena_* fields of `rfm.config.Settings` (CLI
flags, then RFM_ATHENA_* variables, then `[athena]` in .streamlit/secrets.toml) into an AthenaConfig.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from rfm.cloud.dialects import RenderedQuery, render_athena
from rfm.data.query import rfm_sql
from rfm.data.table import RfmOptions, RfmResult, result_from_frame
from rfm.errors import RfmError

if TYPE_CHECKING:
    from pyathena.common import BaseCursor
    from pyathena.connection import Connection
    from pyathena.model import AthenaQueryExecution
    from pyathena.pandas.cursor import PandasCursor

    from rfm.config import Settings

# The default cursor class of a connection: queries here always name their own cursor class.
_DefaultCursor = TypeVar("_DefaultCursor", bound="BaseCursor")

# Letters, digits and underscores, not starting with a digit: what Glue/Athena names can be anyway.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")
# The canonical columns the RFM statement reads from a cleaned log.
QUERY_COLUMNS: tuple[str, ...] = ("customer_id", "invoice_id", "invoice_date", "amount")

DEFAULT_TIMEOUT_SECONDS = 600.0


class AthenaError(RfmError):
    """Athena configuration is wrong, or a query failed, timed out or could not be sent."""


def validate_identifier(value: object, what: str) -> str:
    """`value` if it is a plain identifier; anything else (quotes, dots, spaces, SQL) is refused."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise AthenaError(
            f"{what} {value!r} is not a valid Athena name: use letters, digits and underscores "
            "(starting with a letter or underscore, at most 128 characters)"
        )
    return value


def quote_athena(name: str) -> str:
    """A validated identifier in double quotes (Trino DML syntax)."""
    return '"' + validate_identifier(name, "name") + '"'


@dataclass(frozen=True)
class AthenaConfig:
    """Where the cleaned log is (database.table) and how Athena is reached.

    `columns` maps a canonical column (customer_id, invoice_id, invoice_date, amount) to the
    table's own column name when they differ. `s3_staging_dir` may be left out when the workgroup
    has a result location. `unload` makes Athena write the result as Parquet (faster for big tables).
    """

    database: str
    table: str
    workgroup: str | None = None
    region: str | None = None
    s3_staging_dir: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    unload: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    poll_interval: float = 1.0

    def __post_init__(self) -> None:
        validate_identifier(self.database, "database")
        validate_identifier(self.table, "table")
        if self.workgroup is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", self.workgroup):
            raise AthenaError(f"workgroup {self.workgroup!r} is not a valid Athena workgroup name")
        if self.region is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise AthenaError(f"region {self.region!r} is not an AWS region name (e.g. eu-west-1)")
        if self.s3_staging_dir is not None and not S3_URI.fullmatch(self.s3_staging_dir):
            raise AthenaError(f"S3 staging dir {self.s3_staging_dir!r} is not an s3://bucket/prefix/ URI")
        for canonical, column in self.columns:
            if canonical not in QUERY_COLUMNS:
                raise AthenaError(
                    f"column mapping {canonical!r}: the Athena source maps only {', '.join(QUERY_COLUMNS)}"
                )
            validate_identifier(column, f"column for {canonical}")
        if not self.timeout_seconds > 0:
            raise AthenaError("the Athena timeout must be a positive number of seconds")

    @property
    def column_map(self) -> dict[str, str]:
        return dict(self.columns)

    def describe(self) -> str:
        return f"athena:{self.database}.{self.table}"


def athena_config(settings: Settings) -> AthenaConfig:
    """The Athena source described by `settings` (its athena_* fields: CLI flags, RFM_ATHENA_*
    variables, `[athena]` in secrets.toml); names, region and S3 location are checked here."""
    missing = [name for name in ("database", "table") if not getattr(settings, f"athena_{name}")]
    if missing:
        flags = " and ".join(f"--{name}" for name in missing)
        envs = " / ".join(f"RFM_ATHENA_{name.upper()}" for name in missing)
        raise AthenaError(f"Athena source needs {flags} (or {envs}, or [athena] in secrets.toml)")
    return AthenaConfig(
        database=str(settings.athena_database),
        table=str(settings.athena_table),
        workgroup=settings.athena_workgroup or None,
        region=settings.athena_region or None,
        s3_staging_dir=settings.athena_s3_staging_dir or None,
        columns=tuple(sorted(settings.athena_columns.items())),
        unload=settings.athena_unload,
        timeout_seconds=settings.athena_timeout_seconds,
        poll_interval=settings.athena_poll_interval,
    )


def athena_source_sql(config: AthenaConfig) -> str:
    """The relation the RFM statement reads: the table, or a renaming select over it."""
    table = f"{quote_athena(config.database)}.{quote_athena(config.table)}"
    mapping = config.column_map
    if not mapping:
        return table
    select = ", ".join(
        f"{quote_athena(mapping.get(c, c))} AS {c}" for c in QUERY_COLUMNS
    )
    return f"(SELECT {select} FROM {table}) AS source_lines"


def athena_rfm_query(config: AthenaConfig, options: RfmOptions | None = None) -> RenderedQuery:
    """The exact statement (and execution parameters) sent to Athena for the RFM table."""
    options = options or RfmOptions()
    sql = rfm_sql(athena_source_sql(config), cleaned=True, snapshot=options.snapshot, returns=options.returns)
    return render_athena(sql)


def connect_athena(config: AthenaConfig, **kwargs: object) -> Connection[PandasCursor]:
    """A pyathena connection for `config` (credentials from the AWS chain). Extra keyword arguments go
    to pyathena and boto3, e.g. `endpoint_url` for a VPC endpoint or a local test server."""
    try:
        from pyathena import connect
        from pyathena.pandas.cursor import PandasCursor
    except ImportError as exc:  # pragma: no cover - pyathena is a runtime dependency
        raise AthenaError("the Athena source needs the PyAthena package (pip install PyAthena)") from exc
    params: dict[str, Any] = {  # pyathena.connect's keyword arguments (typed Any there)
        "schema_name": config.database,
        "cursor_class": PandasCursor,
        "poll_interval": config.poll_interval,
    }
    # An empty string makes pyathena skip its own environment fallbacks; None lets it use them.
    if config.s3_staging_dir is not None:
        params["s3_staging_dir"] = config.s3_staging_dir
    if config.workgroup is not None:
        params["work_group"] = config.workgroup
    if config.region is not None:
        params["region_name"] = config.region
    params.update(kwargs)
    try:
        return connect(**params)
    except Exception as exc:
        raise AthenaError(f"cannot connect to Athena: {_reason(exc)}") from exc


def run_query(
    connection: Connection[_DefaultCursor], query: RenderedQuery, timeout_seconds: float, *, unload: bool = False
) -> pd.DataFrame:
    """Run `query` and return its rows; failures and timeouts become an AthenaError naming the query
    id and Athena's reason. A query still running at the timeout is cancelled. `unload` reads the
    result through UNLOAD (Parquet) instead of the CSV result file; both are parsed by pyarrow."""
    from pyathena.pandas.cursor import PandasCursor

    return _execute(connection, query, timeout_seconds, fetch=True, cursor_class=PandasCursor,
                    cursor_kwargs={"unload": unload, "engine": "pyarrow"})


def run_statement(connection: Connection[_DefaultCursor], sql: str,
                  timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> str:
    """Run a statement whose result is not read (DDL); return its query id."""
    from pyathena.cursor import Cursor

    cursor_id: list[str] = []
    _execute(connection, RenderedQuery("athena", sql), timeout_seconds, fetch=False, cursor_class=Cursor,
             query_ids=cursor_id)
    return cursor_id[0] if cursor_id else ""


def _execute(
    connection: Connection[_DefaultCursor],
    query: RenderedQuery,
    timeout_seconds: float,
    *,
    fetch: bool,
    cursor_class: type[BaseCursor],
    cursor_kwargs: dict[str, object] | None = None,
    query_ids: list[str] | None = None,
) -> pd.DataFrame:
    deadline = time.monotonic() + timeout_seconds

    def on_poll(_execution: AthenaQueryExecution) -> None:
        if time.monotonic() > deadline:
            raise _Timeout

    # A PandasCursor (fetch: as_pandas) or a plain Cursor; BaseCursor declares neither execute nor as_pandas.
    cursor: Any = connection.cursor(cursor_class, on_poll=on_poll, **(cursor_kwargs or {}))
    try:
        if query.parameters:
            cursor.execute(query.sql, list(query.parameters), paramstyle="qmark")
        else:
            cursor.execute(query.sql)
        if query_ids is not None and cursor.query_id:
            query_ids.append(cursor.query_id)
        return cursor.as_pandas() if fetch else pd.DataFrame()
    except _Timeout:
        query_id = getattr(cursor, "query_id", None)
        # The query may have ended meanwhile; the timeout is what matters.
        with contextlib.suppress(Exception):
            cursor.cancel()
        raise AthenaError(
            f"Athena query {query_id} did not finish within {timeout_seconds:g} s and was cancelled "
            "(raise --athena-timeout / RFM_ATHENA_TIMEOUT_SECONDS, or check the workgroup's queue)"
        ) from None
    except RfmError:
        raise
    except Exception as exc:
        query_id = getattr(cursor, "query_id", None)
        where = f"Athena query {query_id} failed" if query_id else "Athena query could not be started"
        raise AthenaError(f"{where}: {_reason(exc)}") from exc
    finally:
        with contextlib.suppress(Exception):
            cursor.close()


def compute_rfm_athena(
    config: AthenaConfig,
    options: RfmOptions | None = None,
    *,
    connect: Callable[[AthenaConfig], Connection[PandasCursor]] = connect_athena,
) -> RfmResult:
    """The RFM table computed by Athena over the cleaned log in `config.database`.`config.table`."""
    options = options or RfmOptions()
    query = athena_rfm_query(config, options)
    connection = connect(config)
    try:
        frame = run_query(connection, query, config.timeout_seconds, unload=config.unload)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    # UNLOAD output has no order; sort as the statement's ORDER BY does (code-point order).
    if "customer_id" in frame.columns:
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return result_from_frame(frame, options, where=config.describe())


class _Timeout(Exception):
    """Raised from pyathena's poll callback when the deadline has passed."""


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if type(exc).__name__ == "NoCredentialsError" or "Unable to locate credentials" in text:
        return ("no AWS credentials found; configure the AWS chain (AWS_PROFILE, ~/.aws, SSO, "
                "environment variables or an instance/task role)")
    return text or type(exc).__name__


__all__ = [
    "AthenaConfig",
    "AthenaError",
    "athena_config",
    "athena_rfm_query",
    "athena_source_sql",
    "compute_rfm_athena",
    "connect_athena",
    "run_query",
    "run_statement",
    "validate_identifier",
]
