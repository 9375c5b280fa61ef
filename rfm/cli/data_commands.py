"""`rfm ingest`, `rfm table`, `rfm demo-data`: from a transaction log to the RFM table."""

from __future__ import annotations

import argparse
import json
import sys

from rfm.cli.common import (
    add_read_args,
    add_rfm_args,
    dataset_request,
    settings_from_args,
    source_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ingest", help="convert a log to a cleaned Parquet file and report the cleaning")
    p.add_argument("src", nargs="+", metavar="SRC", help="CSV, Excel or Parquet files, globs or folders")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE.parquet", help="write one cleaned Parquet file")
    target.add_argument("--to", metavar="S3_URI",
                        help="upload to s3://bucket/prefix/ as Parquet partitioned by year and month "
                        "(Hive style, for `rfm athena ddl`); credentials from the AWS chain")
    p.add_argument("--replace", action="store_true",
                   help="with --to: replace the objects already under the prefix")
    p.add_argument("--json", action="store_true", help="print the cleaning report as JSON")
    add_read_args(p)
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser("table", help="compute the per-customer RFM table")
    add_rfm_args(p)
    p.add_argument("--out", default="-", metavar="FILE",
                   help="file to write: .csv, .csv.gz or .parquet (by extension); - for CSV on standard output "
                   "(default)")
    p.add_argument("--print-sql", action="store_true",
                   help="print the exact SQL that would run (for Athena: that would be sent), and stop")
    p.set_defaults(func=cmd_table)

    p = subparsers.add_parser("demo-data", help="write a deterministic synthetic log (Online Retail schema)")
    p.add_argument("--out", required=True, metavar="PATH", help=".parquet, .csv or .csv.gz")
    p.add_argument("--rows", type=int, default=200_000, help="number of lines (default 200000)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo_data)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rfm.service import logs

    settings = settings_from_args(args)
    result = logs.ingest(args.src, source_options(args), out=args.out, to=args.to, replace=args.replace,
                         memory_limit=settings.duckdb_memory_limit)
    if args.json:
        print(json.dumps(result.report.as_dict(), indent=2))
    else:
        print(result.report.format())
        print(result.written + (f"\nnext: {result.next_step}" if result.next_step else ""), file=sys.stderr)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from rfm.service.datasets import rfm_statement, write_rfm_table

    settings = settings_from_args(args)
    request = dataset_request(args, settings)
    if args.print_sql:
        sql, parameters = rfm_statement(request)
        print(sql)
        if parameters:
            print(f"-- execution parameters (in order): {', '.join(parameters)}", file=sys.stderr)
        return 0
    rows = write_rfm_table(request, args.out, memory_limit=settings.duckdb_memory_limit)
    if args.out != "-":
        print(f"wrote {rows:,} customers to {args.out}", file=sys.stderr)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from rfm.service.logs import write_demo_log

    rows = write_demo_log(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {rows:,} lines to {args.out}", file=sys.stderr)
    return 0
