"""`rfm ingest SRC --to s3://bucket/prefix/`: the cleaned log as Hive-partitioned Parquet in S3.

The cleaned log (canonical columns, same rules as `rfm ingest --out`) is written by DuckDB's
`COPY ... PARTITION_BY (year, month)` into a temporary folder (DuckDB cannot load its httpfs
extension here, and a local write keeps the upload restartable), then uploaded with boto3, whose
transfer manager does multipart uploads for large files. The layout

    s3://bucket/prefix/year=2011/month=12/part-<uuid>.parquet

is what `rfm athena ddl` declares with partition projection, so Athena needs no crawler and no
`MSCK REPAIR`. Credentials come from boto3's normal chain; nothing is stored.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypedDict, TypeVar

from rfm.data.cleaning import CleaningReport, cleaning_report, written_log_report
from rfm.data.engine import own_threads, quote_literal
from rfm.data.ingest import cleaned_log
from rfm.data.query import CLEANED_COLUMNS
from rfm.data.sources import CLEANED_MARKER_KEY, CLEANED_MARKER_VALUE, SourceOptions, opened_source
from rfm.errors import RfmError

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9_.\-/=]*")
PARTITION_COLUMNS: tuple[str, ...] = ("year", "month")
_T = TypeVar("_T")


class S3Error(RfmError):
    """An S3 location is malformed, not empty, or cannot be written."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix that ends with '/' (or is empty)."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class UploadResult:
    """What `ingest_to_s3` wrote: the cleaning report, the object keys and the years present."""

    report: CleaningReport
    location: S3Location
    keys: tuple[str, ...]
    first_year: int | None
    last_year: int | None


class S3Object(TypedDict):
    Key: str


class ListObjectsPage(TypedDict, total=False):
    """The part of a `list_objects_v2` response that is read."""

    Contents: list[S3Object]
    IsTruncated: bool
    NextContinuationToken: str


class S3Client(Protocol):
    """What `ingest_to_s3` uses of a boto3 `s3` client (boto3 ships no types; any object with these
    methods will do)."""

    def upload_file(self, filename: str, bucket: str, key: str, /) -> None: ...

    def delete_objects(self, *, Bucket: str, Delete: Mapping[str, object]) -> object: ...

    def list_objects_v2(self, *, Bucket: str, Prefix: str, ContinuationToken: str = ...) -> ListObjectsPage: ...


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/prefix/` to its parts; refuses anything that is not a plain bucket and prefix."""
    if not uri.startswith("s3://"):
        raise S3Error(f"{uri}: expected an s3://bucket/prefix/ URI")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise S3Error(f"{uri}: {bucket!r} is not a valid S3 bucket name")
    if not _PREFIX.fullmatch(prefix) or "//" in prefix or ".." in prefix.split("/"):
        raise S3Error(f"{uri}: the prefix may hold letters, digits and _ . - / = only")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Location(bucket, prefix)


def s3_client(region: str | None = None, **kwargs: object) -> S3Client:
    """A boto3 S3 client from the normal credential chain (AWS_ENDPOINT_URL_S3 points it elsewhere)."""
    import boto3

    return boto3.client("s3", region_name=region, **kwargs)


def write_partitioned(
    paths: Sequence[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    options: SourceOptions | None = None,
    *,
    memory_limit: str | None = None,
) -> CleaningReport:
    """Write the cleaned log at `paths` into `folder` as Parquet partitioned by year and month."""
    with opened_source(paths, options, memory_limit=memory_limit) as (con, source):
        own_threads(con)  # a sorted copy, not an aggregation: see rfm.data.engine
        columns = ", ".join(CLEANED_COLUMNS)
        with cleaned_log(con, source) as cleaned:
            con.execute(
                f"COPY (SELECT {columns}, CAST(year(invoice_date) AS INTEGER) AS year, "
                f"CAST(month(invoice_date) AS INTEGER) AS month FROM ({cleaned.sql}) AS c "
                f"ORDER BY invoice_date, customer_id) "
                f"TO {quote_literal(str(folder))} (FORMAT parquet, COMPRESSION zstd, "
                f"PARTITION_BY ({', '.join(PARTITION_COLUMNS)}), FILENAME_PATTERN 'part-{{uuid}}', "
                f"KV_METADATA {{{CLEANED_MARKER_KEY}: {quote_literal(CLEANED_MARKER_VALUE)}}})"
            )
        # The report after the files: what the de-duplication kept is counted in the files just written
        # (none when nothing was kept: then from the log).
        written = os.path.join(os.fspath(folder), "**", "*.parquet")
        if glob.glob(written, recursive=True):
            return written_log_report(con, source.view, written, kept_rows=cleaned.kept_rows)
        return cleaning_report(con, source.view)


def ingest_to_s3(
    paths: Sequence[str | os.PathLike[str]],
    uri: str,
    options: SourceOptions | None = None,
    *,
    client: S3Client | None = None,
    replace: bool = False,
    memory_limit: str | None = None,
) -> UploadResult:
    """Clean the log at `paths` and upload it under `uri` (Hive-style year=/month= partitions).

    The prefix must be empty (so that Athena never sees two copies of a line) unless `replace`,
    which deletes the objects under it once the new files are uploaded.
    """
    location = parse_s3_uri(uri)
    client = client or s3_client()
    existing = _list_keys(client, location)
    if existing and not replace:
        raise S3Error(
            f"{location.uri} already holds {len(existing)} object(s); use an empty prefix or --replace"
        )
    with tempfile.TemporaryDirectory(prefix="rfm-upload-") as tmp:
        folder = Path(tmp) / "log"
        report = write_partitioned(paths, folder, options, memory_limit=memory_limit)
        files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
        keys: list[str] = []
        for file in files:
            key = location.prefix + file.relative_to(folder).as_posix()
            _call(client.upload_file, str(file), location.bucket, key, what=f"s3://{location.bucket}/{key}")
            keys.append(key)
    stale = sorted(set(existing) - set(keys))
    for start in range(0, len(stale), 1000):
        batch = [{"Key": k} for k in stale[start:start + 1000]]
        _call(client.delete_objects, Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True},
              what=location.uri)
    years = sorted({int(m.group(1)) for k in keys if (m := re.search(r"year=(\d+)/", k))})
    return UploadResult(report, location, tuple(keys), years[0] if years else None,
                        years[-1] if years else None)


def _list_keys(client: S3Client, location: S3Location) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, str] = {"Bucket": location.bucket, "Prefix": location.prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = _call(client.list_objects_v2, what=location.uri, **kwargs)
        keys.extend(item["Key"] for item in page.get("Contents", []))
        if not page.get("IsTruncated"):
            return keys
        token = page.get("NextContinuationToken")


def _call(function: Callable[..., _T], *args: object, what: str, **kwargs: object) -> _T:
    """Run a boto3 call; AWS errors become one line naming the location and AWS's reason."""
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        name = type(exc).__name__
        if name == "NoCredentialsError":
            raise S3Error(
                f"{what}: no AWS credentials found; configure the AWS chain (AWS_PROFILE, ~/.aws, SSO, "
                "environment variables or an instance/task role)"
            ) from exc
        if name in ("ClientError", "S3UploadFailedError", "EndpointConnectionError", "ParamValidationError",
                    "NoSuchBucket"):
            raise S3Error(f"{what}: {' '.join(str(exc).split())}") from exc
        raise
