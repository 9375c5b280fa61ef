"""`rfm athena ddl`: the Athena table over the log uploaded by `rfm ingest --to s3://...`."""

from __future__ import annotations

import argparse
import sys

from rfm.cli.common import add_athena_args, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    athena = subparsers.add_parser("athena", help="Amazon Athena: table DDL for the uploaded log")
    commands = athena.add_subparsers(dest="athena_command", metavar="ATHENA_COMMAND", required=True)

    p = commands.add_parser(
        "ddl", help="print CREATE EXTERNAL TABLE (partition projection on year and month) for the log"
    )
    p.add_argument("--location", required=True, metavar="S3_URI",
                   help="the s3://bucket/prefix/ given to `rfm ingest --to`")
    p.add_argument("--years", default=None, metavar="FIRST-LAST",
                   help="years the projection covers (default 2000-2099; `rfm ingest --to` prints them)")
    p.add_argument("--execute", action="store_true",
                   help="also run CREATE DATABASE IF NOT EXISTS and the DDL in Athena")
    add_athena_args(p)
    p.set_defaults(func=cmd_ddl, map=[])


def cmd_ddl(args: argparse.Namespace) -> int:
    from rfm.cloud.athena import athena_config
    from rfm.service import logs

    config = athena_config(settings_from_args(args))
    ddl = logs.athena_table_ddl(config, args.location, args.years)
    print(ddl + ";")
    if args.execute:
        logs.create_athena_table(config, ddl)
        print(f"created {config.database}.{config.table} in Athena", file=sys.stderr)
    return 0
