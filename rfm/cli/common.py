"""Arguments shared by the commands that read a transaction log, and turning them into results."""

from __future__ import annotations

import argparse
import sys
from datetime import date

import pandas as pd

from rfm.columns import parse_map_args
from rfm.errors import DataError
from rfm.query import RETURNS_POLICIES
from rfm.sources import SourceOptions
from rfm.table import RfmOptions, RfmResult, compute_rfm


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


def add_rfm_args(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    """A log and how RFM is computed from it."""
    parser.add_argument(
        "--data", nargs="+", required=data_required, metavar="FILE",
        help="transaction log: CSV (.csv, .csv.gz), Excel (.xlsx) or Parquet (file, glob or folder)",
    )
    add_read_args(parser)
    parser.add_argument("--snapshot", type=parse_date, metavar="YYYY-MM-DD",
                        help="date recency is measured to (default: the day after the last transaction)")
    parser.add_argument("--returns", choices=RETURNS_POLICIES, default="net",
                        help="net: subtract returns from monetary (default); exclude: ignore them")


def source_options(args: argparse.Namespace) -> SourceOptions:
    return SourceOptions(mapping=parse_map_args(args.map), delimiter=args.delimiter, sheet=args.sheet)


def rfm_options(args: argparse.Namespace) -> RfmOptions:
    return RfmOptions(snapshot=args.snapshot, returns=args.returns)


def rfm_from_args(args: argparse.Namespace) -> RfmResult:
    """The RFM table for the log and options given on the command line."""
    if not args.data:
        raise DataError("--data is required")
    return compute_rfm(args.data, source_options(args), rfm_options(args))


def write_csv(frame: pd.DataFrame, out: str) -> None:
    """Write a table as CSV to a file, or to standard output for `-`."""
    if out == "-":
        frame.to_csv(sys.stdout, index=False)
        return
    try:
        frame.to_csv(out, index=False)
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror}") from exc
