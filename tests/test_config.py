"""rfm.config: one typed settings object. Precedence (overrides > environment > settings file >
defaults), every environment name and alias, the settings file's tables, one-line errors naming
where a bad value came from, and the documentation of every field."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from rfm.config import SETTINGS_DOC, SettingDoc, Settings, SettingsError, env_names, file_key, load_settings
from rfm.errors import RfmError
from rfm.server.settings import DEFAULT_MODEL_DIR, MODEL_DIR_ENV, ServerSettings

NO_FILE = {"RFM_SECRETS_TOML": "/nonexistent/rfm-secrets.toml"}


def settings_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    return {"RFM_SECRETS_TOML": str(path)}


def one_line_error(env: dict[str, str], overrides: dict[str, object] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(overrides, env=env)
    message = str(info.value)
    assert "\n" not in message and message
    assert isinstance(info.value, RfmError)
    return message


# --- precedence --------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings(env=NO_FILE)
    assert settings.models_dir == Path("models")
    assert settings.data == []
    assert settings.demo_data == Path(".data/demo.parquet")
    assert settings.upload_dir == Path(".data/uploads")
    assert settings.duckdb_memory_limit is None
    assert (settings.athena_database, settings.athena_table, settings.athena_columns) == (None, None, {})
    assert (settings.athena_unload, settings.athena_timeout_seconds, settings.athena_poll_interval) == (
        False, 600.0, 1.0)
    assert (settings.scoring_endpoint, settings.scoring_timeout) == ("", 10.0)
    assert (settings.server_host, settings.server_port, settings.server_workers, settings.server_timeout) == (
        "0.0.0.0", None, None, None)
    assert (settings.server_model_dir, settings.server_access_log, settings.server_worker_model_dir) == (
        None, False, None)
    assert load_settings(env={}).settings_file == Path(".streamlit/secrets.toml")


def test_override_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[rfm]\nmodels_dir = "from_file"\nupload_dir = "up_file"\n'
                                  'duckdb_memory_limit = "1GB"\n'
                                  '[athena]\ntimeout_seconds = 5\n[scoring]\ntimeout = 3\n')
    assert load_settings(env=env).models_dir == Path("from_file")
    env |= {"RFM_MODELS_DIR": "from_env", "RFM_DUCKDB_MEMORY_LIMIT": "2GB", "RFM_ATHENA_TIMEOUT_SECONDS": "7"}
    settings = load_settings(env=env)
    assert (settings.models_dir, settings.upload_dir, settings.duckdb_memory_limit) == (
        Path("from_env"), Path("up_file"), "2GB")
    assert (settings.athena_timeout_seconds, settings.scoring_timeout, settings.demo_data) == (
        7.0, 3.0, Path(".data/demo.parquet"))
    settings = load_settings({"models_dir": "from_flag", "athena_timeout_seconds": 9.5}, env=env)
    assert (settings.models_dir, settings.athena_timeout_seconds) == (Path("from_flag"), 9.5)


def test_unset_overrides_and_empty_variables_fall_through(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[athena]\ndatabase = "file_db"\n[athena.columns]\ncustomer_id = "cust"\n')
    settings = load_settings({"athena_database": None, "athena_columns": {}, "models_dir": ""},
                             env={**env, "RFM_ATHENA_DATABASE": "", "RFM_MODELS_DIR": "  "})
    assert (settings.athena_database, settings.athena_columns, settings.models_dir) == (
        "file_db", {"customer_id": "cust"}, Path("models"))


def test_a_higher_column_mapping_replaces_the_file_one(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[athena]\ncolumns = { customer_id = "cust", amount = "total" }\n')
    assert load_settings(env=env).athena_columns == {"customer_id": "cust", "amount": "total"}
    assert load_settings(env={**env, "RFM_ATHENA_COLUMNS": "invoice_id=inv"}).athena_columns == {"invoice_id": "inv"}
    assert load_settings({"athena_columns": {"amount": "net"}}, env=env).athena_columns == {"amount": "net"}


def test_default_environment_is_os_environ_and_env_param_replaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFM_SECRETS_TOML", NO_FILE["RFM_SECRETS_TOML"])
    monkeypatch.setenv("RFM_UPLOAD_DIR", "/srv/uploads")
    assert load_settings().upload_dir == Path("/srv/uploads")
    assert load_settings(env=NO_FILE).upload_dir == Path(".data/uploads")


def test_default_settings_file_is_streamlit_secrets_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[rfm]\ndemo_data = "demo.csv"\n')
    assert load_settings(env={}).demo_data == Path("demo.csv")
    other = tmp_path / "other.toml"
    other.write_text('[rfm]\ndemo_data = "other.csv"\n')
    assert load_settings(env={"RFM_SECRETS_TOML": str(other)}).demo_data == Path("other.csv")
    assert load_settings({"settings_file": other}, env={}).demo_data == Path("other.csv")


def test_settings_are_frozen() -> None:
    settings = load_settings(env=NO_FILE)
    with pytest.raises(ValidationError):
        settings.models_dir = Path("elsewhere")  # type: ignore[misc]


# --- environment names and aliases -------------------------------------------------------------------


@pytest.mark.parametrize(("variables", "field", "expected"), [
    ({"RFM_MODELS_DIR": "m"}, "models_dir", Path("m")),
    ({"RFM_DEMO_DATA": "d.parquet"}, "demo_data", Path("d.parquet")),
    ({"RFM_UPLOAD_DIR": "u"}, "upload_dir", Path("u")),
    ({"RFM_DUCKDB_MEMORY_LIMIT": "4GB"}, "duckdb_memory_limit", "4GB"),
    ({"RFM_ATHENA_DATABASE": "db"}, "athena_database", "db"),
    ({"RFM_ATHENA_TABLE": "t"}, "athena_table", "t"),
    ({"RFM_ATHENA_WORKGROUP": "wg"}, "athena_workgroup", "wg"),
    ({"RFM_ATHENA_REGION": "eu-west-1"}, "athena_region", "eu-west-1"),
    ({"RFM_ATHENA_S3_STAGING_DIR": "s3://b/p/"}, "athena_s3_staging_dir", "s3://b/p/"),
    ({"RFM_ATHENA_UNLOAD": "true"}, "athena_unload", True),
    ({"RFM_ATHENA_UNLOAD": "0"}, "athena_unload", False),
    ({"RFM_ATHENA_TIMEOUT_SECONDS": "42"}, "athena_timeout_seconds", 42.0),
    ({"RFM_ATHENA_POLL_INTERVAL": "0.25"}, "athena_poll_interval", 0.25),
    ({"RFM_SCORING_ENDPOINT": "http://h:1"}, "scoring_endpoint", "http://h:1"),
    ({"RFM_ENDPOINT": "sagemaker:old"}, "scoring_endpoint", "sagemaker:old"),
    ({"RFM_SCORING_ENDPOINT": "sagemaker:new", "RFM_ENDPOINT": "sagemaker:old"}, "scoring_endpoint",
     "sagemaker:new"),
    ({"RFM_SCORING_TIMEOUT": "2.5"}, "scoring_timeout", 2.5),
    ({"RFM_SERVER_HOST": "127.0.0.1"}, "server_host", "127.0.0.1"),
    ({"SAGEMAKER_BIND_TO_PORT": "9090"}, "server_port", 9090),
    ({"SAGEMAKER_BIND_TO_PORT": " 9091 "}, "server_port", 9091),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}, "server_workers", 3),
    ({"MODEL_SERVER_WORKERS": "7"}, "server_workers", 7),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MODEL_SERVER_WORKERS": "7"}, "server_workers", 2),
    ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "5"}, "server_timeout", 5.0),
    ({"MODEL_SERVER_TIMEOUT": "6.5"}, "server_timeout", 6.5),
    ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "5", "MODEL_SERVER_TIMEOUT": "9"}, "server_timeout", 5.0),
    ({"SM_MODEL_DIR": "/models/x"}, "server_model_dir", "/models/x"),
    ({"RFM_SERVER_ACCESS_LOG": "yes"}, "server_access_log", True),
    ({"RFM_SERVER_ACCESS_LOG": "TRUE"}, "server_access_log", True),
    ({"RFM_SERVER_MODEL_DIR": "/w"}, "server_worker_model_dir", "/w"),
])
def test_every_environment_variable(variables: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(env={**NO_FILE, **variables}), field) == expected


def test_only_the_documented_names_are_read() -> None:
    """No second spelling sneaks in: RFM_SERVER_PORT, RFM_SETTINGS_FILE or lower case are not settings."""
    settings = load_settings(env={**NO_FILE, "RFM_SERVER_PORT": "1", "RFM_SETTINGS_FILE": "x.toml",
                                  "rfm_models_dir": "lower", "RFM_SERVER_WORKER_MODEL_DIR": "/x"})
    assert (settings.server_port, settings.models_dir, settings.server_worker_model_dir) == (
        None, Path("models"), None)
    assert settings.settings_file == Path(NO_FILE["RFM_SECRETS_TOML"])
    assert env_names("server_worker_model_dir") == (MODEL_DIR_ENV,)


@pytest.mark.parametrize(("text", "expected"), [
    ("a.csv", ["a.csv"]),
    ("a.csv, logs/*.parquet ,folder/", ["a.csv", "logs/*.parquet", "folder/"]),
    (" , a.csv,,", ["a.csv"]),
    ('["a.csv"]', ['["a.csv"]']),  # never parsed as JSON
])
def test_rfm_data_is_comma_separated(text: str, expected: list[str]) -> None:
    assert load_settings(env={**NO_FILE, "RFM_DATA": text}).data == expected


def test_athena_columns_from_the_environment() -> None:
    env = {**NO_FILE, "RFM_ATHENA_COLUMNS": "customer_id=cust, amount = total"}
    assert load_settings(env=env).athena_columns == {"customer_id": "cust", "amount": "total"}


# --- the settings file -------------------------------------------------------------------------------


def test_the_three_tables(tmp_path: Path) -> None:
    env = settings_file(tmp_path, """
[rfm]
models_dir = "/srv/models"
data = ["a.csv", "b/*.parquet"]
demo_data = "demo.parquet"
upload_dir = "/srv/uploads"
duckdb_memory_limit = "8GB"
server_access_log = true

[athena]
database = "retail"
table = "lines"
workgroup = "analysts"
region = "eu-west-1"
s3_staging_dir = "s3://results/athena/"
unload = true
timeout_seconds = 120
poll_interval = 0.5

[athena.columns]
customer_id = "cust"

[scoring]
endpoint = "sagemaker:rfm"
timeout = 30

[auth]
client_secret = "streamlit's, not ours"
password = "also not ours"

[connections.db]
url = "postgres://x"
""")
    settings = load_settings(env=env)
    assert (settings.models_dir, settings.data, settings.demo_data, settings.upload_dir) == (
        Path("/srv/models"), ["a.csv", "b/*.parquet"], Path("demo.parquet"), Path("/srv/uploads"))
    assert (settings.duckdb_memory_limit, settings.server_access_log) == ("8GB", True)
    assert (settings.athena_database, settings.athena_table, settings.athena_workgroup, settings.athena_region,
            settings.athena_s3_staging_dir, settings.athena_unload, settings.athena_timeout_seconds,
            settings.athena_poll_interval, settings.athena_columns) == (
        "retail", "lines", "analysts", "eu-west-1", "s3://results/athena/", True, 120.0, 0.5, {"customer_id": "cust"})
    assert (settings.scoring_endpoint, settings.scoring_timeout) == ("sagemaker:rfm", 30.0)


def test_data_in_the_file_may_be_a_comma_string(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[rfm]\ndata = "a.csv, b.csv"\n')
    assert load_settings(env=env).data == ["a.csv", "b.csv"]


def test_missing_file_and_file_without_our_tables_are_no_settings(tmp_path: Path) -> None:
    def values(env: dict[str, str]) -> dict[str, object]:
        return load_settings(env=env).model_dump(exclude={"settings_file"})

    assert values({"RFM_SECRETS_TOML": str(tmp_path / "absent.toml")}) == values(NO_FILE)
    env = settings_file(tmp_path, '[auth]\nredirect_uri = "x"\ntop_level_key = 1\n')
    assert values(env) == values(NO_FILE)


def test_malformed_toml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[rfm]\nmodels_dir = "m"\nbad key = 1\n')
    message = one_line_error(env)
    assert message.startswith(f"{tmp_path / 'secrets.toml'}: cannot be read as TOML: ")
    assert "line 3" in message


def test_default_file_named_relative_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[athena\n")
    assert one_line_error({}).startswith(".streamlit/secrets.toml: cannot be read as TOML: ")


def test_directory_unreadable_or_binary_file(tmp_path: Path) -> None:
    assert one_line_error({"RFM_SECRETS_TOML": str(tmp_path)}) == (
        f"{tmp_path}: is a directory, expected a TOML settings file")
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    message = one_line_error({"RFM_SECRETS_TOML": str(blocker / "secrets.toml")})
    assert message.startswith(f"{blocker / 'secrets.toml'}: cannot be read: ")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert one_line_error({"RFM_SECRETS_TOML": str(binary)}).startswith(f"{binary}: cannot be read as TOML")


@pytest.mark.parametrize("key", ["aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                 "access_key", "secret_key", "password", "AWS_SECRET_ACCESS_KEY"])
def test_credentials_in_athena_are_refused(tmp_path: Path, key: str) -> None:
    env = settings_file(tmp_path, f'[athena]\ndatabase = "d"\n{key} = "abc"\n')
    message = one_line_error(env)
    assert key in message and "credentials come from the AWS chain" in message
    assert "abc" not in message


@pytest.mark.parametrize(("text", "expected"), [
    ('[athena]\nstaging = "s3://b/"\n', "unknown key(s) staging in [athena]; expected database, table, "),
    ('[rfm]\nmodel_dir = "m"\n', "unknown key(s) model_dir in [rfm]; expected models_dir, data, "),
    ('[rfm]\nathena_table = "t"\n', "unknown key(s) athena_table in [rfm]"),
    ('[rfm]\nsettings_file = "x.toml"\n', "unknown key(s) settings_file in [rfm]"),
    ('[scoring]\nurl = "x"\n', "unknown key(s) url in [scoring]; expected endpoint, timeout"),
    ('rfm = "x"\n', "[rfm] must be a table"),
])
def test_unknown_keys_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in one_line_error(settings_file(tmp_path, text))


# --- bad values name their source --------------------------------------------------------------------


@pytest.mark.parametrize(("variables", "expected"), [
    ({"RFM_ATHENA_TIMEOUT_SECONDS": "abc"}, "RFM_ATHENA_TIMEOUT_SECONDS='abc': expected a number"),
    ({"RFM_ATHENA_TIMEOUT_SECONDS": "0"}, "RFM_ATHENA_TIMEOUT_SECONDS='0': expected a positive number"),
    ({"RFM_ATHENA_POLL_INTERVAL": "-1"}, "RFM_ATHENA_POLL_INTERVAL='-1': expected a positive number"),
    ({"RFM_ATHENA_UNLOAD": "perhaps"}, "RFM_ATHENA_UNLOAD='perhaps': expected true or false"),
    ({"RFM_ATHENA_COLUMNS": "customer_id"},
     "RFM_ATHENA_COLUMNS='customer_id': expected canonical=column pairs, e.g. customer_id=cust,amount=total"),
    ({"RFM_SCORING_TIMEOUT": "soon"}, "RFM_SCORING_TIMEOUT='soon': expected a number"),
    ({"SAGEMAKER_BIND_TO_PORT": "99999"}, "SAGEMAKER_BIND_TO_PORT='99999': expected 1..65535"),
    ({"SAGEMAKER_BIND_TO_PORT": "0"}, "SAGEMAKER_BIND_TO_PORT='0': expected 1..65535"),
    ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http': expected a whole number"),
    ({"MODEL_SERVER_WORKERS": "0"}, "MODEL_SERVER_WORKERS='0': expected at least 1"),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2.5"}, "SAGEMAKER_MODEL_SERVER_WORKERS='2.5': expected a whole number"),
    ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "-3"}, "SAGEMAKER_MODEL_SERVER_TIMEOUT='-3': expected a positive number"),
    ({"MODEL_SERVER_TIMEOUT": "inf"}, "MODEL_SERVER_TIMEOUT='inf': expected a finite number"),
    ({"RFM_SERVER_ACCESS_LOG": "loud"}, "RFM_SERVER_ACCESS_LOG='loud': expected true or false"),
])
def test_bad_environment_values_name_the_variable(variables: dict[str, str], expected: str) -> None:
    assert one_line_error({**NO_FILE, **variables}) == expected


def test_bad_file_values_name_the_file_table_and_key(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    env = settings_file(tmp_path, '[athena]\ntimeout_seconds = "x"\n')
    assert one_line_error(env) == f"{path}: [athena] timeout_seconds='x': expected a number"
    env = settings_file(tmp_path, "[rfm]\ndata = 5\n")
    assert one_line_error(env) == (
        f"{path}: [rfm] data=5: expected a list, or a comma-separated string")
    env = settings_file(tmp_path, "[athena.columns]\ncustomer_id = 3\n")
    assert one_line_error(env).startswith(f"{path}: [athena] columns=")
    env = settings_file(tmp_path, "[scoring]\ntimeout = 0\n")
    assert one_line_error(env) == f"{path}: [scoring] timeout=0: expected a positive number"


def test_the_value_that_wins_is_the_one_named(tmp_path: Path) -> None:
    """A bad file value hidden by a good environment value is no error; a bad override is named as such."""
    env = settings_file(tmp_path, '[athena]\ntimeout_seconds = "x"\n')
    assert load_settings(env={**env, "RFM_ATHENA_TIMEOUT_SECONDS": "3"}).athena_timeout_seconds == 3.0
    assert one_line_error(NO_FILE, {"athena_timeout_seconds": "later"}) == (
        "athena_timeout_seconds='later': expected a number")


def test_several_bad_values_stay_on_one_line() -> None:
    message = one_line_error({**NO_FILE, "SAGEMAKER_BIND_TO_PORT": "x", "RFM_SCORING_TIMEOUT": "y"})
    assert "SAGEMAKER_BIND_TO_PORT='x'" in message and "RFM_SCORING_TIMEOUT='y'" in message


def test_unknown_override_is_refused() -> None:
    assert one_line_error(NO_FILE, {"athena_tabel": "x"}).startswith("unknown setting(s) athena_tabel; expected ")


# --- documentation -----------------------------------------------------------------------------------


def test_every_field_is_documented() -> None:
    documented = [row.field for row in SETTINGS_DOC]
    assert documented == list(Settings.model_fields)
    for row in SETTINGS_DOC:
        assert isinstance(row, SettingDoc)
        assert row.env and all(name == name.upper() for name in row.env), row
        assert row.meaning and row.default, row
        assert row.env == env_names(row.field)
        where = file_key(row.field)
        assert row.file_key == (f"[{where[0]}] {where[1]}" if where else None)
    fields = {f.name for f in dataclasses.fields(SettingDoc)}
    assert fields == {"field", "env", "file_key", "default", "meaning"}


def test_documented_file_keys_are_the_accepted_ones(tmp_path: Path) -> None:
    """Every documented file key is accepted by the settings file (a value of the right type each)."""
    samples = {"data": '["a.csv"]', "athena_columns": '{ customer_id = "c" }', "athena_unload": "true",
               "server_access_log": "false", "server_port": "8081", "server_workers": "2",
               "upload_max_mb": "50", "data_roots": "[\"data\"]", "analysts": "[\"a@b.c\"]", "marketers": "\"@b.c\""}
    numbers = {"athena_timeout_seconds", "athena_poll_interval", "scoring_timeout", "server_timeout"}
    tables: dict[str, list[str]] = {}
    for row in SETTINGS_DOC:
        if row.file_key is None:
            continue
        table, key = row.file_key.strip("[").split("] ")
        value = samples.get(row.field) or ("3" if row.field in numbers else '"x"')
        tables.setdefault(table, []).append(f"{key} = {value}")
    text = "".join(f"[{table}]\n" + "\n".join(lines) + "\n" for table, lines in tables.items())
    settings = load_settings(env=settings_file(tmp_path, text))
    assert settings.server_port == 8081 and settings.athena_database == "x"


# --- the model server's view -------------------------------------------------------------------------


def test_server_settings_from_settings() -> None:
    settings = load_settings(env={**NO_FILE, "SM_MODEL_DIR": "/models/a", "SAGEMAKER_BIND_TO_PORT": "9000",
                                  "MODEL_SERVER_WORKERS": "3", "MODEL_SERVER_TIMEOUT": "12",
                                  "RFM_SERVER_HOST": "127.0.0.1", "RFM_SERVER_ACCESS_LOG": "1"})
    server = ServerSettings.from_settings(settings)
    assert (server.host, server.port, server.workers, server.timeout, server.model_dir, server.access_log) == (
        "127.0.0.1", 9000, 3, 12.0, "/models/a", True)
    flags = ServerSettings.from_settings(settings, model_dir="/flag", host="0.0.0.0", port=8123, workers=1)
    assert (flags.host, flags.port, flags.workers, flags.model_dir) == ("0.0.0.0", 8123, 1, "/flag")
    defaults = ServerSettings.from_settings(load_settings(env=NO_FILE))
    assert (defaults.host, defaults.port, defaults.workers, defaults.timeout, defaults.model_dir) == (
        "0.0.0.0", 8080, os.cpu_count() or 1, 60.0, DEFAULT_MODEL_DIR)
    with pytest.raises(RfmError, match=r"--port 70000: expected 1\.\.65535"):
        ServerSettings.from_settings(settings, port=70000)
    with pytest.raises(RfmError, match="--workers 0: expected at least 1"):
        ServerSettings.from_settings(settings, workers=0)


def test_server_main_refuses_to_start_on_a_bad_setting(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from rfm.server.__main__ import main

    monkeypatch.setenv("RFM_SECRETS_TOML", NO_FILE["RFM_SECRETS_TOML"])
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "99999")
    assert main(["serve"]) == 2
    assert "refusing to start: SAGEMAKER_BIND_TO_PORT='99999': expected 1..65535" in caplog.text
