"""The Athena table over the log uploaded by `rfm ingest --to s3://...`.

Partition projection computes the year=/month= partitions from table properties, so new months are
queryable as soon as their files land in S3: no Glue crawler, no `MSCK REPAIR TABLE`, no partition
API calls. Column types are the Hive names of what DuckDB writes for the canonical columns.
"""

from __future__ import annotations

from rfm.cloud.athena import AthenaError, validate_identifier
from rfm.cloud.s3 import PARTITION_COLUMNS, parse_s3_uri

# Canonical column -> Hive type, as DuckDB writes them (VARCHAR, TIMESTAMP, DOUBLE).
CLEANED_LOG_SCHEMA: tuple[tuple[str, str], ...] = (
    ("customer_id", "string"),
    ("invoice_id", "string"),
    ("invoice_date", "timestamp"),
    ("quantity", "double"),
    ("unit_price", "double"),
    ("amount", "double"),
    ("country", "string"),
)
DEFAULT_YEARS = (2000, 2099)


def create_database_ddl(database: str) -> str:
    """CREATE DATABASE IF NOT EXISTS for `database` (Hive DDL quotes names with backticks)."""
    return f"CREATE DATABASE IF NOT EXISTS `{validate_identifier(database, 'database')}`"


def create_table_ddl(
    database: str,
    table: str,
    location: str,
    first_year: int = DEFAULT_YEARS[0],
    last_year: int = DEFAULT_YEARS[1],
) -> str:
    """CREATE EXTERNAL TABLE for the cleaned log at `location`, partitioned by year and month with
    partition projection over `first_year`..`last_year` (a narrow range keeps planning fast)."""
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    root = parse_s3_uri(location).uri  # validated: bucket and a plain prefix, no quotes possible
    if not 1900 <= first_year <= last_year <= 9999:
        raise AthenaError(f"year range {first_year}-{last_year} is not a valid range of years")
    columns = ",\n".join(f"  `{name}` {kind}" for name, kind in CLEANED_LOG_SCHEMA)
    partitions = ", ".join(f"`{name}` int" for name in PARTITION_COLUMNS)
    template = root + "/".join(f"{name}=${{{name}}}" for name in PARTITION_COLUMNS) + "/"
    properties = {
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": f"{first_year},{last_year}",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "storage.location.template": template,
    }
    props = ",\n".join(f"  '{key}' = '{value}'" for key, value in properties.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({partitions})\n"
        f"STORED AS PARQUET\n"
        f"LOCATION '{root}'\n"
        f"TBLPROPERTIES (\n{props}\n)"
    )


def parse_years(text: str) -> tuple[int, int]:
    """'2010-2011' or '2011' to (first, last)."""
    first, _, last = text.partition("-")
    try:
        years = (int(first), int(last or first))
    except ValueError:
        raise AthenaError(f"--years {text!r}: expected FIRST-LAST, e.g. 2010-2011") from None
    if years[0] > years[1]:
        raise AthenaError(f"--years {text!r}: the first year is after the last")
    return years
