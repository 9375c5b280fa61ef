"""Jobs on whole transaction logs: clean one once (`rfm ingest`, to a Parquet file or to S3 for Athena),
create the Athena table over the uploaded log, and write the synthetic demo log."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rfm.cloud.athena import AthenaConfig
from rfm.data.cleaning import CleaningReport
from rfm.data.sources import SourceOptions


@dataclass(frozen=True)
class IngestResult:
    """The cleaning report, where the cleaned log went, and the next step (for an S3 upload)."""

    report: CleaningReport
    written: str
    next_step: str | None = None


def ingest(paths: Sequence[str | os.PathLike[str]], read: SourceOptions | None = None, *, out: str | None = None,
           to: str | None = None, replace: bool = False, memory_limit: str | None = None) -> IngestResult:
    """The cleaned log at `paths` written once: to the Parquet file `out`, or uploaded under the S3 URI `to`
    as Parquet partitioned by year and month (the layout `athena_table_ddl` describes)."""
    if to:
        from rfm.cloud.s3 import ingest_to_s3

        upload = ingest_to_s3(paths, to, read, replace=replace, memory_limit=memory_limit)
        next_step = None
        if upload.first_year is not None:
            next_step = (f"rfm athena ddl --location {upload.location.uri} "
                         f"--years {upload.first_year}-{upload.last_year} --database DB --table TABLE")
        return IngestResult(upload.report, f"uploaded {len(upload.keys)} Parquet file(s) to {upload.location.uri}",
                            next_step)
    if not out:
        raise ValueError("ingest needs `out` or `to`")
    from rfm.data.ingest import ingest as ingest_file

    return IngestResult(ingest_file(paths, out, read, memory_limit=memory_limit), f"wrote {out}")


def athena_table_ddl(config: AthenaConfig, location: str, years: str | None = None) -> str:
    """CREATE EXTERNAL TABLE for the log uploaded under `location` (partition projection over `years`,
    "FIRST-LAST", default 2000-2099)."""
    from rfm.cloud.ddl import DEFAULT_YEARS, create_table_ddl, parse_years

    first, last = parse_years(years) if years else DEFAULT_YEARS
    return create_table_ddl(config.database, config.table, location, first, last)


def create_athena_table(config: AthenaConfig, ddl: str) -> None:
    """Run CREATE DATABASE IF NOT EXISTS and `ddl` in Athena (credentials from the AWS chain)."""
    from rfm.cloud.athena import connect_athena, run_statement
    from rfm.cloud.ddl import create_database_ddl

    connection = connect_athena(config)
    try:
        run_statement(connection, create_database_ddl(config.database), config.timeout_seconds)
        run_statement(connection, ddl, config.timeout_seconds)
    finally:
        connection.close()


def write_demo_log(out: str | os.PathLike[str], rows: int, seed: int) -> int:
    """A deterministic synthetic log in the Online Retail schema (.parquet, .csv or .csv.gz); returns the
    lines written."""
    from rfm.data.demo import write_demo

    return write_demo(out, rows=rows, seed=seed)
