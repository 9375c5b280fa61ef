"""Arguments shared by the commands that read a transaction log, and turning them into results."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING

from rfm.data.columns import parse_map_args
from rfm.data.query import RETURNS_POLICIES
from rfm.data.sources import SourceOptions
from rfm.data.table import RfmOptions, RfmResult, compute_rfm
from rfm.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from rfm.cloud.athena import AthenaConfig

SOURCES: tuple[str, ...] = ("duckdb", "athena")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_read_args(parser: argparse.ArgumentParser) -> None:
    """How to read a log: column mapping, CSV delimiter, Excel sheet."""
    parser.add_argument(
        "--map", action="append", default=[], metavar="CANONICAL=SOURCE",
        help="map a canonical column (customer_id, invoice_id, invoice_date, quantity, unit_price, "
        "amount, country) to the log's column name; repeatable",
    )
    parser.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    parser.add_argument("--sheet", help="Excel sheet to read (default: every sheet with a customer column)")


def add_athena_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Where the Athena table is and how Athena is reached; each flag falls back to RFM_ATHENA_* and
    then to [athena] in .streamlit/secrets.toml. Credentials come from the AWS chain only."""
    parser.add_argument("--database", dest="athena_database", metavar="DB",
                        help="Athena database (RFM_ATHENA_DATABASE)")
    parser.add_argument("--table", dest="athena_table", metavar="TABLE",
                        help="Athena table holding the cleaned log (RFM_ATHENA_TABLE)")
    parser.add_argument("--workgroup", dest="athena_workgroup", metavar="NAME",
                        help="Athena workgroup (RFM_ATHENA_WORKGROUP; default: primary)")
    parser.add_argument("--region", dest="athena_region", metavar="REGION",
                        help="AWS region (RFM_ATHENA_REGION; default: the AWS chain's region)")
    parser.add_argument("--s3-staging-dir", dest="athena_s3_staging_dir", metavar="S3_URI",
                        help="s3://bucket/prefix/ for query results (RFM_ATHENA_S3_STAGING_DIR; "
                        "optional when the workgroup has a result location)")
    parser.add_argument("--unload", dest="athena_unload", action="store_true", default=None,
                        help="read the result through UNLOAD as Parquet (RFM_ATHENA_UNLOAD)")
    parser.add_argument("--athena-timeout", dest="athena_timeout_seconds", type=float, metavar="SECONDS",
                        help="cancel the query after this long (RFM_ATHENA_TIMEOUT_SECONDS; default 600)")


def add_rfm_args(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    """A log and how RFM is computed from it: files (--source duckdb) or an Athena table."""
    parser.add_argument(
        "--source", choices=SOURCES, default="duckdb",
        help="duckdb: read --data with the embedded engine (default); athena: run the query in Athena "
        "over the table written by `rfm ingest --to s3://...`",
    )
    parser.add_argument(
        "--data", nargs="+", metavar="FILE",
        help="transaction log: CSV (.csv, .csv.gz), Excel (.xlsx) or Parquet (file, glob or folder)"
        + ("; required with --source duckdb" if data_required else ""),
    )
    parser.set_defaults(data_required=data_required)
    add_read_args(parser)
    parser.add_argument("--snapshot", type=parse_date, metavar="YYYY-MM-DD",
                        help="date recency is measured to (default: the day after the last transaction)")
    parser.add_argument("--returns", choices=RETURNS_POLICIES, default="net",
                        help="net: subtract returns from monetary (default); exclude: ignore them")
    add_athena_args(parser.add_argument_group("Athena source (with --source athena)"))


def source_options(args: argparse.Namespace) -> SourceOptions:
    return SourceOptions(mapping=parse_map_args(args.map), delimiter=args.delimiter, sheet=args.sheet)


def rfm_options(args: argparse.Namespace) -> RfmOptions:
    return RfmOptions(snapshot=args.snapshot, returns=args.returns)


def athena_config_from_args(args: argparse.Namespace) -> AthenaConfig:
    """Athena settings: the flags, then RFM_ATHENA_* variables, then .streamlit/secrets.toml;
    `--map canonical=column` renames the table's columns (names checked, never pasted raw)."""
    from rfm.cloud.athena import load_config

    overrides = {
        name: getattr(args, f"athena_{name}", None)
        for name in ("database", "table", "workgroup", "region", "s3_staging_dir", "unload", "timeout_seconds")
    }
    overrides["columns"] = parse_map_args(getattr(args, "map", []) or [])
    return load_config(overrides)


def rfm_from_args(args: argparse.Namespace) -> RfmResult:
    """The RFM table for the log (or Athena table) and options given on the command line."""
    if getattr(args, "source", "duckdb") == "athena":
        from rfm.cloud.athena import compute_rfm_athena

        return compute_rfm_athena(athena_config_from_args(args), rfm_options(args))
    if not args.data:
        raise DataError("--data is required (or --source athena with --database and --table)")
    return compute_rfm(args.data, source_options(args), rfm_options(args))


def rfm_sql_from_args(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """The exact statement `rfm_from_args` would run, and its bound parameters, without running it.

    For DuckDB the statement reads the canonical view the files are loaded into (`source_lines`)."""
    if getattr(args, "source", "duckdb") == "athena":
        from rfm.cloud.athena import athena_rfm_query

        query = athena_rfm_query(athena_config_from_args(args), rfm_options(args))
        return query.sql, query.parameters
    if not args.data:
        raise DataError("--data is required (or --source athena with --database and --table)")
    from rfm.data.engine import connect, quote_identifier
    from rfm.data.query import rfm_sql
    from rfm.data.sources import load_source

    con = connect()
    try:
        source = load_source(con, args.data, source_options(args))
    finally:
        con.close()
    options = rfm_options(args)
    sql = rfm_sql(quote_identifier(source.view), cleaned=source.cleaned, snapshot=options.snapshot,
                  returns=options.returns)
    return sql, ()


def write_csv(frame: pd.DataFrame, out: str) -> None:
    """Write a table as CSV to a file, or to standard output for `-`."""
    if out == "-":
        frame.to_csv(sys.stdout, index=False)
        return
    try:
        frame.to_csv(out, index=False)
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror}") from exc
