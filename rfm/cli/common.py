"""Arguments shared by the commands, and turning them into settings and dataset requests.

The commands only parse and print: settings come from `rfm.config.load_settings` (flags override the
environment and the settings file), every job is a call into `rfm.service`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING

from rfm.data.columns import parse_map_args
from rfm.data.query import RETURNS_POLICIES, ReturnsPolicy
from rfm.data.sources import SourceOptions
from rfm.errors import DataError

if TYPE_CHECKING:
    from rfm.config import Settings
    from rfm.model import ModelStore
    from rfm.service.datasets import Dataset, DatasetRequest

SOURCES: tuple[str, ...] = ("duckdb", "athena")
ATHENA_FLAGS: tuple[str, ...] = ("database", "table", "workgroup", "region", "s3_staging_dir", "unload",
                                 "timeout_seconds")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", metavar="DIR",
                        help="where model versions live (default: RFM_MODELS_DIR, then models)")


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
    add_read_args(parser)
    parser.add_argument("--snapshot", type=parse_date, metavar="YYYY-MM-DD",
                        help="date recency is measured to (default: the day after the last transaction)")
    parser.add_argument("--returns", choices=RETURNS_POLICIES, default=ReturnsPolicy.NET.value,
                        help="net: subtract returns from monetary (default); exclude: ignore them")
    add_athena_args(parser.add_argument_group("Athena source (with --source athena)"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings with this command's flags on top (--models-dir, the Athena flags, --map for Athena)."""
    from rfm.config import load_settings

    overrides: dict[str, object] = {}
    if getattr(args, "models_dir", None):
        overrides["models_dir"] = args.models_dir
    for name in ATHENA_FLAGS:
        value = getattr(args, f"athena_{name}", None)
        if value not in (None, ""):
            overrides[f"athena_{name}"] = value
    if getattr(args, "source", None) == "athena" and getattr(args, "map", None):
        overrides["athena_columns"] = parse_map_args(args.map)
    return load_settings(overrides)


def source_options(args: argparse.Namespace) -> SourceOptions:
    return SourceOptions(mapping=parse_map_args(args.map), delimiter=args.delimiter, sheet=args.sheet)


def dataset_request(args: argparse.Namespace, settings: Settings) -> DatasetRequest:
    """What the command line asks for: --data files, or the Athena table, with --snapshot and --returns."""
    from rfm.service.datasets import AthenaSource, DatasetRequest, FileSource

    snapshot, returns = args.snapshot, ReturnsPolicy(args.returns)
    if getattr(args, "source", "duckdb") == "athena":
        from rfm.cloud.athena import athena_config

        return DatasetRequest(AthenaSource(athena_config(settings)), snapshot, returns)
    if not args.data:
        raise DataError("--data is required (or --source athena with --database and --table)")
    return DatasetRequest(FileSource(tuple(args.data), source_options(args)), snapshot, returns)


def load_dataset(args: argparse.Namespace, settings: Settings) -> Dataset:
    from rfm.service.datasets import load_dataset as load

    return load(dataset_request(args, settings), memory_limit=settings.duckdb_memory_limit)


def model_store(settings: Settings) -> ModelStore:
    from rfm.service.models import open_store

    key = settings.model_signing_key
    return open_store(settings.models_dir, signing_key=key.get_secret_value() if key is not None else None)


def warn(message: str | None) -> None:
    """A warning on standard error, one line starting with `warning:` (scripts grep for it)."""
    if message:
        print(f"warning: {message}", file=sys.stderr)
