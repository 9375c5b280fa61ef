"""`rfm ingest`, `rfm table`, `rfm demo-data`: from a transaction log to the RFM table."""

from __future__ import annotations

import argparse
import json
import sys

from rfm.cli.common import add_read_args, add_rfm_args, rfm_from_args, source_options, write_csv
from rfm.demo import write_demo
from rfm.ingest import ingest


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ingest", help="convert a log to a cleaned Parquet file and report the cleaning")
    p.add_argument("src", nargs="+", metavar="SRC", help="CSV, Excel or Parquet files, globs or folders")
    p.add_argument("--out", required=True, metavar="FILE.parquet")
    p.add_argument("--json", action="store_true", help="print the cleaning report as JSON")
    add_read_args(p)
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser("table", help="compute the per-customer RFM table")
    add_rfm_args(p)
    p.add_argument("--out", default="-", metavar="FILE.csv", help="CSV file to write, - for standard output")
    p.set_defaults(func=cmd_table)

    p = subparsers.add_parser("demo-data", help="write a deterministic synthetic log (Online Retail schema)")
    p.add_argument("--out", required=True, metavar="PATH", help=".parquet, .csv or .csv.gz")
    p.add_argument("--rows", type=int, default=200_000, help="number of lines (default 200000)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo_data)


def cmd_ingest(args: argparse.Namespace) -> int:
    report = ingest(args.src, args.out, source_options(args))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format())
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    result = rfm_from_args(args)
    write_csv(result.table, args.out)
    if args.out != "-":
        print(f"wrote {len(result.table):,} customers (snapshot {result.snapshot}) to {args.out}", file=sys.stderr)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    rows = write_demo(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {rows:,} lines to {args.out}", file=sys.stderr)
    return 0
