"""Athena configuration (flags > environment > secrets.toml, read by rfm.config), identifier checks
against SQL injection, the DDL, and the CLI's --print-sql and --source flags."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlglot

from rfm.cli import build_parser, main
from rfm.cloud.athena import AthenaConfig, AthenaError, athena_config, athena_rfm_query, validate_identifier
from rfm.cloud.ddl import CLEANED_LOG_SCHEMA, create_table_ddl, parse_years
from rfm.cloud.s3 import S3Error, parse_s3_uri, write_partitioned
from rfm.config import SettingsError, load_settings

INJECTIONS = [
    'lines"; DROP TABLE lines; --',
    "lines; DELETE FROM x",
    "retail.lines",
    "lines`",
    "li nes",
    "1lines",
    "",
    "x' OR '1'='1",
    "lïnes",
    "a" * 129,
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_injection_through_names_is_refused(name: str) -> None:
    with pytest.raises(AthenaError, match="not a valid Athena name"):
        validate_identifier(name, "table")
    with pytest.raises(AthenaError):
        AthenaConfig(database="retail", table=name)
    with pytest.raises(AthenaError):
        AthenaConfig(database=name, table="lines")
    with pytest.raises(AthenaError):
        AthenaConfig(database="retail", table="lines", columns=(("customer_id", name),))


def test_injection_through_the_cli_column_mapping_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["table", "--source", "athena", "--database", "retail", "--table", "lines", "--print-sql",
                 "--map", 'customer_id=cust" FROM other; --'])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "not a valid Athena name" in captured.err


def test_valid_names_are_quoted_in_the_statement() -> None:
    config = AthenaConfig(database="retail_eu", table="Lines_2011", columns=(("customer_id", "CustomerID"),))
    sql = athena_rfm_query(config).sql
    assert '"retail_eu"."Lines_2011"' in sql
    assert '"CustomerID" AS customer_id' in sql
    with pytest.raises(AthenaError, match="maps only"):
        AthenaConfig(database="retail", table="lines", columns=(("country", "land"),))


def _config(overrides: dict[str, object] | None = None, env: dict[str, str] | None = None,
            secrets: Path | None = None) -> AthenaConfig:
    full_env = {"RFM_SECRETS_TOML": str(secrets)} if secrets else {"RFM_SECRETS_TOML": "/nonexistent/secrets.toml"}
    return athena_config(load_settings(overrides, env={**full_env, **(env or {})}))


def test_settings_flags_then_environment_then_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[athena]\ndatabase = "from_secrets"\ntable = "lines"\nworkgroup = "wg_secrets"\n'
        'region = "eu-west-1"\ns3_staging_dir = "s3://results-bucket/athena/"\nunload = true\n'
        '[athena.columns]\ncustomer_id = "cust"\n'
        "[other]\npassword = 'not ours'\n"
    )
    config = _config(secrets=secrets)
    assert config == AthenaConfig(database="from_secrets", table="lines", workgroup="wg_secrets",
                                  region="eu-west-1", s3_staging_dir="s3://results-bucket/athena/",
                                  columns=(("customer_id", "cust"),), unload=True)
    env = {"RFM_ATHENA_DATABASE": "from_env", "RFM_ATHENA_UNLOAD": "false", "RFM_ATHENA_TIMEOUT_SECONDS": "42",
           "RFM_ATHENA_COLUMNS": "amount=total"}
    config = _config(env=env, secrets=secrets)
    assert (config.database, config.unload, config.timeout_seconds, config.columns) == (
        "from_env", False, 42.0, (("amount", "total"),))
    config = _config({"athena_database": "from_flag", "athena_workgroup": None,
                      "athena_columns": {"invoice_id": "inv"}}, env=env, secrets=secrets)
    assert (config.database, config.workgroup, config.columns) == ("from_flag", "wg_secrets", (("invoice_id", "inv"),))


def test_settings_missing_or_holding_credentials(tmp_path: Path) -> None:
    with pytest.raises(AthenaError, match="--database and --table"):
        _config(secrets=tmp_path / "absent.toml")
    with pytest.raises(AthenaError, match=r"needs --table \(or RFM_ATHENA_TABLE, or \[athena\] in secrets.toml\)"):
        _config({"athena_database": "d"})
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[athena]\ndatabase = "d"\ntable = "t"\naws_secret_access_key = "abc"\n')
    with pytest.raises(SettingsError, match="credentials come from the AWS chain"):
        _config(secrets=secrets)
    secrets.write_text('[athena]\ndatabase = "d"\ntable = "t"\nstaging = "s3://b/"\n')
    with pytest.raises(SettingsError, match="unknown key"):
        _config(secrets=secrets)
    with pytest.raises(AthenaError, match="not an s3://"):
        _config({"athena_s3_staging_dir": "https://example.com/x"},
                env={"RFM_ATHENA_DATABASE": "d", "RFM_ATHENA_TABLE": "t"})
    with pytest.raises(AthenaError, match="maps only"):
        _config(env={"RFM_ATHENA_DATABASE": "d", "RFM_ATHENA_TABLE": "t", "RFM_ATHENA_COLUMNS": "country=land"})
    with pytest.raises(AthenaError, match="not a valid Athena name"):
        _config(env={"RFM_ATHENA_DATABASE": "d", "RFM_ATHENA_TABLE": 'lines"; DROP TABLE x'})


def test_print_sql_is_the_rendered_statement(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "none.toml"))
    code = main(["table", "--source", "athena", "--database", "retail", "--table", "lines", "--print-sql",
                 "--snapshot", "2011-12-10", "--returns", "exclude"])
    captured = capsys.readouterr()
    assert code == 0
    expected = athena_rfm_query(AthenaConfig(database="retail", table="lines"),
                                _options(date(2011, 12, 10), "exclude"))
    assert captured.out == expected.sql + "\n"
    assert "'2011-12-10'" in captured.err
    assert sqlglot.parse_one(captured.out, read="athena") is not None


def test_source_flag_on_every_data_command() -> None:
    """Commands built with add_rfm_args (by any module) accept --source and the Athena flags."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    with_data = [name for name, sub in subparsers.choices.items()
                 if any(a.dest == "data" for a in sub._actions)]
    assert "table" in with_data
    for name in with_data:
        sub = subparsers.choices[name]
        source = next(a for a in sub._actions if a.dest == "source")
        assert source.choices == ("duckdb", "athena") and source.default == "duckdb"
        assert {"athena_database", "athena_table"} <= {a.dest for a in sub._actions}


def test_duckdb_source_still_needs_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table"]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_ddl_matches_the_uploaded_files(demo_parquet: Path, tmp_path: Path) -> None:
    """The DDL's columns are the Parquet files' columns with their types; partitions are year/month."""
    folder = tmp_path / "log"
    write_partitioned([demo_parquet], folder)
    con = duckdb.connect()
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{folder}/*/*/*.parquet', hive_partitioning = false)"
    ).fetchall()
    hive = {"VARCHAR": "string", "TIMESTAMP": "timestamp", "DOUBLE": "double"}
    assert [(name, hive[kind]) for name, kind, *_ in described] == list(CLEANED_LOG_SCHEMA)
    years = sorted({p.name for p in folder.iterdir()})
    assert years == ["year=2010", "year=2011"]
    ddl = create_table_ddl("retail", "lines", "s3://rfm-data/retail/lines", 2010, 2011)
    assert "PARTITIONED BY (`year` int, `month` int)" in ddl
    assert "'projection.year.range' = '2010,2011'" in ddl
    assert "'storage.location.template' = 's3://rfm-data/retail/lines/year=${year}/month=${month}/'" in ddl
    assert "LOCATION 's3://rfm-data/retail/lines/'" in ddl


def test_locations_and_years_are_checked() -> None:
    for bad in ("s3://bucket/pre'fix/", "s3://B/x", "http://bucket/x", "s3://bucket/../x/"):
        with pytest.raises(S3Error):
            parse_s3_uri(bad)
    assert parse_s3_uri("s3://my-bucket/a/b").uri == "s3://my-bucket/a/b/"
    with pytest.raises(S3Error):
        create_table_ddl("retail", "lines", "s3://bucket/x'; DROP/")
    with pytest.raises(AthenaError):
        create_table_ddl("retail", "lines`; DROP", "s3://bucket/x/")
    assert parse_years("2010-2011") == (2010, 2011)
    with pytest.raises(AthenaError):
        parse_years("2011-2010")


def _options(snapshot: date, returns: str):  # type: ignore[no-untyped-def]
    from rfm.data.table import RfmOptions

    return RfmOptions(snapshot=snapshot, returns=returns)  # type: ignore[arg-type]
