"""The S3 upload and the pyathena path end to end against a local moto server (no AWS account).

Moto stores S3 objects and records Athena executions (query text, parameters, database, workgroup)
but does not run SQL: the result of the RFM query is preset through moto's API, in the text form
Athena returns, and must come back as the same RFM table. That the SQL itself computes this table
is shown by tests/test_athena_sql.py (the Athena rendering run through DuckDB).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from rfm.cli import main
from rfm.cloud.athena import AthenaConfig, AthenaError, athena_rfm_query, compute_rfm_athena, connect_athena
from rfm.cloud.ddl import create_database_ddl, create_table_ddl
from rfm.cloud.s3 import S3Error, ingest_to_s3
from rfm.data.cleaning import cleaning_report
from rfm.data.engine import connect
from rfm.data.sources import SourceOptions, load_source
from rfm.data.table import RfmOptions, compute_rfm
from tests.conftest import point_aws_at_moto
from tests.helpers import assert_same_report

moto_server = pytest.importorskip("moto.server")

REGION = "us-east-1"
DATA_BUCKET = "rfm-data"
RESULTS_BUCKET = "rfm-results"
STAGING = f"s3://{RESULTS_BUCKET}/athena/"
LOCATION = f"s3://{DATA_BUCKET}/retail/lines/"
# Athena's type names for the RFM statement's columns (what GetQueryResults reports).
ATHENA_TYPES = {"customer_id": "varchar", "recency": "bigint", "frequency": "bigint", "monetary": "double",
                "r_score": "integer", "f_score": "integer", "m_score": "integer", "rfm_segment": "varchar",
                "snapshot_date": "date"}


@pytest.fixture()
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Fake credentials and every boto3 client (also pyathena's) pointed at moto, fresh state."""
    for name in list(__import__("os").environ):
        if name.startswith("RFM_ATHENA_"):
            monkeypatch.delenv(name)
    point_aws_at_moto(moto_url, monkeypatch, tmp_path, REGION)
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "no-secrets.toml"))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.create_bucket(Bucket=RESULTS_BUCKET)
    boto3.client("athena", region_name=REGION).create_work_group(Name="rfm", Description="tests")
    yield moto_url
    requests.post(f"{moto_url}/moto-api/state-manager/unset-transition",
                  json={"model_name": "athena::execution"}, timeout=10)


def _executions() -> list[dict]:
    """Every query moto received, oldest first (moto keeps them in submission order)."""
    athena = boto3.client("athena", region_name=REGION)
    from moto.athena.models import athena_backends  # same process: the threaded server's backend

    ids = list(athena_backends["123456789012"][REGION].executions)
    return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]


def _preset_result(moto_url: str, table: pd.DataFrame) -> None:
    """Queue `table` as the next query's result, in Athena's text form with the header row first."""
    columns = list(table.columns)
    rows = [{"Data": [{"VarCharValue": c} for c in columns]}]
    for record in table.itertuples(index=False):
        rows.append({"Data": [{"VarCharValue": _athena_text(v)} for v in record]})
    column_info = [{"Name": c, "Label": c, "Type": ATHENA_TYPES[c], "Precision": 0, "Scale": 0,
                    "Nullable": "UNKNOWN", "CaseSensitive": ATHENA_TYPES[c] == "varchar"} for c in columns]
    response = requests.post(f"{moto_url}/moto-api/static/athena/query-results",
                             json={"region": REGION, "results": [{"rows": rows, "column_info": column_info}]},
                             timeout=30)
    assert response.status_code == 201


def _athena_text(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value)


def test_upload_ddl_query_and_results_end_to_end(aws: str, demo_parquet: Path, tmp_path: Path) -> None:
    # 1. Upload: the cleaned log as Hive-partitioned Parquet.
    upload = ingest_to_s3([demo_parquet], LOCATION)
    assert upload.keys and all(k.startswith("retail/lines/year=") for k in upload.keys)
    s3 = boto3.client("s3", region_name=REGION)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=DATA_BUCKET)["Contents"])
    assert listed == sorted(upload.keys)
    months = {tuple(k.split("/")[2:4]) for k in upload.keys}
    assert ("year=2011", "month=6") in months and len(months) == 13  # Dec 2010 .. Dec 2011
    # The uploaded files, read back from S3, hold the cleaned log: same RFM table as the source.
    local = tmp_path / "downloaded"
    for key in upload.keys:
        target = local / key
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(DATA_BUCKET, key, str(target))
    first = pq.read_schema(local / upload.keys[0])
    assert first.names == ["customer_id", "invoice_id", "invoice_date", "quantity", "unit_price", "amount",
                           "country"]
    assert first.metadata[b"rfm_cleaned"] == b"v1"
    options = RfmOptions(snapshot=date(2011, 12, 10))
    expected = compute_rfm([local], options=options)
    assert expected.table.equals(compute_rfm([demo_parquet], options=options).table)
    # The report counted in the written files is the log's own.
    con = connect()
    direct = cleaning_report(con, load_source(con, [demo_parquet], SourceOptions()).view)
    assert_same_report(upload.report, direct)

    # A second upload to the same prefix is refused (Athena would count every line twice).
    with pytest.raises(S3Error, match="already holds"):
        ingest_to_s3([demo_parquet], LOCATION)

    # 2. DDL through the CLI, executed in "Athena".
    code = main(["athena", "ddl", "--location", LOCATION, "--years", f"{upload.first_year}-{upload.last_year}",
                 "--database", "retail", "--table", "lines", "--s3-staging-dir", STAGING,
                 "--workgroup", "rfm", "--execute"])
    assert code == 0
    queries = [e["Query"] for e in _executions()]
    assert queries == [create_database_ddl("retail"),
                       create_table_ddl("retail", "lines", LOCATION, upload.first_year, upload.last_year)]
    athena = boto3.client("athena", region_name=REGION)
    # pyathena names the catalog in lower case, as Athena accepts it; moto created the database there.
    assert athena.get_database(CatalogName="awsdatacatalog", DatabaseName="retail")["Database"]["Name"] == "retail"

    # 3. The RFM query: submitted with the expected SQL and parameters, results read back.
    _preset_result(aws, expected.table.assign(snapshot_date=pd.Timestamp(expected.snapshot)))
    config = AthenaConfig(database="retail", table="lines", workgroup="rfm", region=REGION,
                          s3_staging_dir=STAGING, poll_interval=0.01, timeout_seconds=30)
    result = compute_rfm_athena(config, options)
    sent = _executions()[-1]
    query = athena_rfm_query(config, options)
    assert sent["Query"] == query.sql
    assert '"retail"."lines"' in sent["Query"]
    assert sent["ExecutionParameters"] == list(query.parameters)
    assert set(query.parameters) == {"'2011-12-10'"}
    assert sent["QueryExecutionContext"]["Database"] == "retail"
    assert sent["WorkGroup"] == "rfm"
    assert sent["ResultConfiguration"]["OutputLocation"].startswith(STAGING)
    assert result.snapshot == expected.snapshot
    pd.testing.assert_frame_equal(result.table, expected.table, check_exact=True)


def test_cli_table_from_athena(aws: str, tmp_path: Path) -> None:
    """`rfm table --source athena` writes what Athena returned, configured by environment variables."""
    table = pd.DataFrame({
        "customer_id": ["12346", "12347", "12348"], "recency": [326, 2, 75], "frequency": [1, 7, 4],
        "monetary": [0.0, 4310.0, 1797.24], "r_score": [1, 5, 3], "f_score": [1, 5, 3], "m_score": [1, 5, 3],
        "rfm_segment": ["hibernating", "champions", "need attention"],
        "snapshot_date": [pd.Timestamp("2011-12-10")] * 3,
    })
    _preset_result(aws, table)
    out = tmp_path / "rfm.csv"
    env = {"RFM_ATHENA_DATABASE": "retail", "RFM_ATHENA_TABLE": "lines", "RFM_ATHENA_S3_STAGING_DIR": STAGING,
           "RFM_ATHENA_POLL_INTERVAL": "0.01"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert main(["table", "--source", "athena", "--out", str(out)]) == 0
    written = pd.read_csv(out, dtype={"customer_id": str})
    pd.testing.assert_frame_equal(written, table.drop(columns="snapshot_date"), check_dtype=False)
    sent = _executions()[-1]
    assert '"retail"."lines"' in sent["Query"]
    assert not sent.get("ExecutionParameters")  # no --snapshot: no value to bind


def test_timeout_cancels_the_query_and_names_it(aws: str) -> None:
    # Keep every execution QUEUED: moto advances it only after 10,000 status calls.
    requests.post(f"{aws}/moto-api/state-manager/set-transition", timeout=10, json={
        "model_name": "athena::execution", "transition": {"progression": "manual", "times": 10_000}})
    config = AthenaConfig(database="retail", table="lines", s3_staging_dir=STAGING,
                          poll_interval=0.02, timeout_seconds=0.3)
    with pytest.raises(AthenaError, match=r"did not finish within 0.3 s and was cancelled") as caught:
        compute_rfm_athena(config)
    execution = _executions()[-1]
    assert execution["QueryExecutionId"] in str(caught.value)
    assert execution["Status"]["State"] == "CANCELLED"


def test_athena_refusal_gives_the_reason(aws: str) -> None:
    config = AthenaConfig(database="retail", table="lines", workgroup="no_such_group",
                          s3_staging_dir=STAGING, poll_interval=0.01)
    with pytest.raises(AthenaError, match="WorkGroup does not exist"):
        compute_rfm_athena(config)


def test_failed_query_message_has_reason_and_id() -> None:
    """pyathena raises OperationalError(StateChangeReason) for a FAILED query; the message keeps both."""
    from pyathena.error import OperationalError

    class FailingCursor:
        query_id = "0f1e2d3c-query"

        def execute(self, *args: object, **kwargs: object) -> None:
            raise OperationalError("COLUMN_NOT_FOUND: line 3:5: Column 'amount' cannot be resolved")

        def close(self) -> None:
            pass

    class Connection:
        def cursor(self, *args: object, **kwargs: object) -> FailingCursor:
            return FailingCursor()

        def close(self) -> None:
            pass

    config = AthenaConfig(database="retail", table="lines")
    with pytest.raises(AthenaError) as caught:
        compute_rfm_athena(config, connect=lambda _config: Connection())
    assert str(caught.value) == ("Athena query 0f1e2d3c-query failed: COLUMN_NOT_FOUND: line 3:5: "
                                 "Column 'amount' cannot be resolved")


def test_connection_factory_uses_the_config(aws: str) -> None:
    config = AthenaConfig(database="retail", table="lines", workgroup="rfm", region="eu-west-1",
                          s3_staging_dir=STAGING)
    connection = connect_athena(config)
    try:
        assert connection.schema_name == "retail"
        assert connection.work_group == "rfm"
        assert connection.region_name == "eu-west-1"
        assert connection.s3_staging_dir == STAGING
    finally:
        connection.close()




def test_cli_ingest_to_s3(aws: str, demo_parquet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(demo_parquet), "--to", "s3://rfm-data/cli/"]) == 0
    captured = capsys.readouterr()
    assert "next: rfm athena ddl --location s3://rfm-data/cli/ --years 2010-2011" in captured.err
    keys = [o["Key"] for o in boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET, Prefix="cli/")["Contents"]]
    assert len(keys) == 13 and all(k.endswith(".parquet") for k in keys)
    # --replace swaps the files: still one copy of every month.
    assert main(["ingest", str(demo_parquet), "--to", "s3://rfm-data/cli/", "--replace"]) == 0
    again = [o["Key"] for o in boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET, Prefix="cli/")["Contents"]]
    assert len(again) == 13 and not set(again) & set(keys)
    assert main(["ingest", str(demo_parquet), "--to", "s3://rfm-data/cli/"]) == 2
    assert "already holds 13 object(s)" in capsys.readouterr().err


def test_unload_sends_the_statement_inside_unload(aws: str) -> None:
    config = AthenaConfig(database="retail", table="lines", s3_staging_dir=STAGING, unload=True,
                          poll_interval=0.01)
    # Moto does not run the UNLOAD, so there is no Parquet to read back: a clear error, not a crash.
    with pytest.raises(AthenaError, match=r"Athena query [0-9a-f-]+ failed"):
        compute_rfm_athena(config)
    sent = " ".join(_executions()[-1]["Query"].split())
    assert sent.startswith("UNLOAD ( " + " ".join(athena_rfm_query(config).sql.split()) + " ) TO ")
    assert f"TO '{STAGING}" in sent and "PARQUET" in sent.upper()
