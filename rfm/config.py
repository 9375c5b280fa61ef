"""Settings: one typed, frozen object, read in one place (`load_settings`).

Every setting of rfm (dashboard, CLI, Athena source, scoring client, model server) is a field of
`Settings`. Sources, first found wins:

1. explicit overrides passed in code (command-line flags): `load_settings({"athena_table": ...})`;
2. environment variables: `RFM_<FIELD>` (e.g. RFM_MODELS_DIR, RFM_ATHENA_TABLE), plus the names
   SageMaker sets for the model server (SAGEMAKER_BIND_TO_PORT, SAGEMAKER_MODEL_SERVER_WORKERS, ...)
   and a few older names kept working (RFM_ENDPOINT, RFM_SECRETS_TOML);
3. the settings file `.streamlit/secrets.toml` (RFM_SECRETS_TOML names another), the file the
   dashboard and Streamlit already share, read with tomllib (rfm never imports streamlit). Its
   `[rfm]` table holds the top-level settings by field name, `[athena]` the Athena ones (without
   the athena_ prefix: `database`, `table`, ...), `[scoring]` the scoring client's (`endpoint`,
   `timeout`). Streamlit's own tables ([auth], [connections], ...) are left alone;
4. the defaults below.

Anything wrong (a value that does not parse, a malformed or unreadable settings file, an unknown
key, credentials in [athena]) is a `SettingsError` of one line naming where the value came from:
`RFM_ATHENA_TIMEOUT_SECONDS='abc': expected a number`, `.streamlit/secrets.toml: [athena]
timeout_seconds='x': expected a number`. A missing settings file is simply no file settings.

`SETTINGS_DOC` describes every field (environment variables, file key, default, meaning) for the
README's table.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _SourceError

from rfm.errors import RfmError, first_line, short_repr

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

ENV_PREFIX = "RFM_"
DEFAULT_SETTINGS_FILE = Path(".streamlit") / "secrets.toml"
# The settings file's tables that are ours, and the field-name prefix each one stands for.
FILE_TABLES: dict[str, str] = {"rfm": "", "athena": "athena_", "scoring": "scoring_"}
# Keys that must never sit in the app's configuration: credentials come from the AWS chain.
CREDENTIAL_KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                             "access_key", "secret_key", "password"})


class SettingsError(RfmError):
    """A setting is wrong (a value, the settings file, a key), explained in one line naming where it came from."""


def _setting(default: Any = None, meaning: str = "", *, env: tuple[str, ...] | None = None,
             file: bool = True, shown_default: str | None = None, **constraints: Any) -> Any:
    """A field with its documentation: `env` the variable names (default RFM_<FIELD>), `file` whether
    the settings file may set it, `shown_default` the default as the README states it.

    Typed Any like pydantic's `Field`, which it wraps: the result stands as the default of a field of
    any type, and `constraints` are Field's keyword arguments."""
    extra: dict[str, Any] = {"env": list(env) if env else None, "file": file, "shown_default": shown_default}
    if callable(default):
        return Field(default_factory=default, description=meaning, json_schema_extra=extra, **constraints)
    return Field(default, description=meaning, json_schema_extra=extra, **constraints)


class Settings(BaseSettings):
    """Every rfm setting; build it with `load_settings` (which turns problems into one-line errors)."""

    model_config = SettingsConfigDict(
        frozen=True,
        env_prefix=ENV_PREFIX,
        case_sensitive=True,
        env_ignore_empty=True,
        extra="forbid",
    )

    # --- data and models (dashboard, CLI) ---------------------------------------------------------
    models_dir: Path = _setting(Path("models"), "the model versions directory")
    data: Annotated[list[str], NoDecode] = _setting(
        list, "files, globs or folders the dashboard opens instead of the demo data "
        "(comma-separated in the environment; a list or a comma-separated string in the file)",
        shown_default="(the demo data)")
    demo_data: Path = _setting(Path(".data/demo.parquet"), "the demo log (generated on first use)")
    upload_dir: Path = _setting(Path(".data/uploads"), "where the dashboard keeps uploaded files")
    settings_file: Path = _setting(DEFAULT_SETTINGS_FILE, "the settings file (TOML; the one Streamlit reads)",
                                   env=("RFM_SECRETS_TOML",), file=False)
    currency: str = _setting(
        "GBP", "the currency of the log's amounts, as an ISO 4217 code (GBP, EUR, USD...): shown on every "
        "money figure of the dashboard", min_length=1, max_length=8)
    duckdb_memory_limit: str | None = _setting(
        None, "DuckDB's memory limit, e.g. 4GB (DuckDB spills to disk beyond it). Without one, a 2-core machine "
        "runs DuckDB's aggregations with 3 threads (its hash tables are partitioned from 3 threads on: raw logs "
        "10-25% faster); with one, with 2 (more memory per thread, less spilling)",
        shown_default="DuckDB's default (80% of RAM)")

    # --- security: who may do what, what may be read, which models may be loaded -----------------
    data_roots: Annotated[list[str], NoDecode] = _setting(
        lambda: [".data", "data"], "the folders the dashboard's local-path source may read, checked after "
        "resolving symlinks and .. (comma-separated in the environment; a list in the file)",
        shown_default=".data, data")
    upload_max_mb: int = _setting(200, "the largest file the dashboard accepts as an upload, in MB", ge=1)
    model_signing_key: SecretStr | None = _setting(
        None, "HMAC-SHA256 key: saving signs a model version's manifest, loading refuses a missing or wrong "
        "signature")
    analysts: Annotated[list[str], NoDecode] = _setting(
        list, "who may also retrain, rename and promote in the dashboard: e-mail addresses, @domain, or "
        "group:NAME (from the groups claim); comma-separated in the environment", shown_default="(nobody)")
    marketers: Annotated[list[str], NoDecode] = _setting(
        list, "who may view, score and export in the dashboard: e-mail addresses, @domain, or group:NAME",
        shown_default="(nobody)")
    groups_claim: str = _setting("groups", "the OIDC claim that lists a signed-in user's groups")
    audit_log: Path = _setting(Path(".data/audit.jsonl"),
                               "where retrains, renames, promotions and exports are recorded (JSON lines)")

    # --- the Athena source ------------------------------------------------------------------------
    athena_database: str | None = _setting(None, "Athena database holding the cleaned log")
    athena_table: str | None = _setting(None, "Athena table holding the cleaned log")
    athena_workgroup: str | None = _setting(None, "Athena workgroup", shown_default="primary")
    athena_region: str | None = _setting(None, "AWS region of Athena", shown_default="the AWS chain's region")
    athena_s3_staging_dir: str | None = _setting(
        None, "s3://bucket/prefix/ for query results", shown_default="the workgroup's result location")
    athena_columns: Annotated[dict[str, str], NoDecode] = _setting(
        dict, "the table's own column names: canonical=column,... in the environment, a table in the file",
        shown_default="(canonical names)")
    athena_unload: bool = _setting(False, "read the result through UNLOAD as Parquet (faster for big tables)")
    athena_timeout_seconds: float = _setting(600.0, "cancel an Athena query after this many seconds",
                                             gt=0, allow_inf_nan=False)
    athena_poll_interval: float = _setting(1.0, "seconds between Athena query status checks",
                                           gt=0, allow_inf_nan=False)

    # --- the scoring client -----------------------------------------------------------------------
    scoring_endpoint: str = _setting(
        "", "where `rfm score` and the dashboard score: local, http://host:port or sagemaker:NAME",
        env=("RFM_SCORING_ENDPOINT", "RFM_ENDPOINT"), shown_default="local")
    scoring_timeout: float = _setting(10.0, "seconds to wait for a scoring server", gt=0, allow_inf_nan=False)

    # --- the model server (SageMaker's contract) --------------------------------------------------
    server_host: str = _setting("0.0.0.0", "address the model server binds")
    server_port: int | None = _setting(None, "port of the model server", env=("SAGEMAKER_BIND_TO_PORT",),
                                       shown_default="8080", ge=1, le=65535)
    server_workers: int | None = _setting(
        None, "model server worker processes",
        env=("SAGEMAKER_MODEL_SERVER_WORKERS", "MODEL_SERVER_WORKERS"), shown_default="the CPU count", ge=1)
    server_timeout: float | None = _setting(
        None, "seconds a scoring request may take before the server answers 504",
        env=("SAGEMAKER_MODEL_SERVER_TIMEOUT", "MODEL_SERVER_TIMEOUT"), shown_default="60",
        gt=0, allow_inf_nan=False)
    server_model_dir: str | None = _setting(None, "the model directory the server loads", env=("SM_MODEL_DIR",),
                                            shown_default="/opt/ml/model")
    server_access_log: bool = _setting(False, "log every request of the model server")
    server_worker_model_dir: str | None = _setting(
        None, "internal: the verified model directory `serve` hands to its worker processes",
        env=("RFM_SERVER_MODEL_DIR",), file=False)

    @field_validator("data", "data_roots", "analysts", "marketers", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> list[str]:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            return [item.strip() for item in value if item.strip()]
        raise ValueError("expected a list, or a comma-separated string")

    @field_validator("models_dir", "demo_data", "upload_dir", "audit_log", mode="after")
    @classmethod
    def _home(cls, value: Path) -> Path:
        """"~/models" means the home folder's models, as in a shell (a variable or file is not one)."""
        return value.expanduser()

    @field_validator("currency", mode="after")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        """An ISO code is upper case; "gbp" in a settings file means GBP."""
        return value.strip().upper()

    @field_validator("athena_columns", mode="before")
    @classmethod
    def _parse_columns(cls, value: object) -> dict[str, str]:
        if isinstance(value, str):  # environment: "customer_id=cust,amount=total"
            pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
            if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
                raise ValueError("expected canonical=column pairs, e.g. customer_id=cust,amount=total")
            return {key.strip(): column.strip() for key, column in pairs}
        if isinstance(value, Mapping):
            value = tuple(value.items())
        if isinstance(value, (list, tuple)) and all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            for pair in value
        ):
            return {key: column for key, column in value}
        raise ValueError("expected a table of canonical = column names")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides > environment > settings file (> defaults, added by pydantic-settings)."""
        reading = _READING.get() or _Reading(env=os.environ)
        return (init_settings, MappedEnvSource(settings_cls, reading.env, reading.env_origins),
                SettingsFileSource(settings_cls, reading.file_origins))


# --- field metadata ---------------------------------------------------------------------------------


def _extra(name: str) -> dict[str, Any]:
    """The json_schema_extra `_setting` stored for a field (env names, file flag, shown default)."""
    extra = Settings.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def env_names(name: str) -> tuple[str, ...]:
    """The environment variables of field `name`, first found wins."""
    return tuple(_extra(name).get("env") or (ENV_PREFIX + name.upper(),))


def file_key(name: str) -> tuple[str, str] | None:
    """(table, key) of field `name` in the settings file, or None when the file cannot set it."""
    if not _extra(name).get("file", True):
        return None
    for table, prefix in FILE_TABLES.items():
        if prefix and name.startswith(prefix):
            return table, name.removeprefix(prefix)
    return "rfm", name


def _file_fields() -> dict[str, dict[str, str]]:
    """table -> key -> field name."""
    tables: dict[str, dict[str, str]] = {table: {} for table in FILE_TABLES}
    for name in Settings.model_fields:
        where = file_key(name)
        if where is not None:
            tables[where[0]][where[1]] = name
    return tables


@dataclass(frozen=True)
class SettingDoc:
    """One row of the settings table: the field, its environment variables (first found wins), its key in
    the settings file ("[athena] table", or None), its default as shown to users, and what it means."""

    field: str
    env: tuple[str, ...]
    file_key: str | None
    default: str
    meaning: str


def _shown_default(name: str, info: FieldInfo) -> str:
    shown = _extra(name).get("shown_default")
    if shown is not None:
        return str(shown)
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "(not set)"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _settings_doc() -> tuple[SettingDoc, ...]:
    rows = []
    for name, info in Settings.model_fields.items():
        where = file_key(name)
        rows.append(SettingDoc(
            field=name,
            env=env_names(name),
            file_key=f"[{where[0]}] {where[1]}" if where else None,
            default=_shown_default(name, info),
            meaning=info.description or "",
        ))
    return tuple(rows)


SETTINGS_DOC: tuple[SettingDoc, ...] = _settings_doc()


# --- sources ----------------------------------------------------------------------------------------


@dataclass
class _Reading:
    """What one `load_settings` call reads from, and where each value came from (for error messages)."""

    env: Mapping[str, str]
    env_origins: dict[str, str] | None = None
    file_origins: dict[str, str] | None = None


_READING: ContextVar[_Reading | None] = ContextVar("rfm_settings_reading", default=None)


class MappedEnvSource(EnvSettingsSource):
    """Environment variables from `env` (os.environ by default), under each field's own names
    (`env_names`): RFM_<FIELD>, SageMaker's variables, and the older aliases."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str],
                 origins: dict[str, str] | None = None) -> None:
        self._env = env
        self._origins = {} if origins is None else origins
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Empty (or blank) variables are unset, as they always were.
        return {name: value for name, value in self._env.items() if isinstance(value, str) and value.strip()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[str | None, str, bool]:
        for name in env_names(field_name):
            value = self.env_vars.get(name)
            if value is not None:
                self._origins[field_name] = f"{name}={value!r}"
                return value, field_name, False
        return None, field_name, False


class SettingsFileSource(PydanticBaseSettingsSource):
    """`[rfm]`, `[athena]` and `[scoring]` of the settings file (tomllib), keyed by field name. The file
    is `settings_file` as set by the overrides or the environment, else .streamlit/secrets.toml."""

    def __init__(self, settings_cls: type[BaseSettings], origins: dict[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self._origins = {} if origins is None else origins

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[None, str, bool]:
        # Unused: __call__ reads the whole file at once.
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        path = Path(self.current_state.get("settings_file") or DEFAULT_SETTINGS_FILE)
        document = read_settings_file(path)
        values: dict[str, object] = {}
        for table, fields in _file_fields().items():
            if table not in document:
                continue
            section = document[table]
            if not isinstance(section, dict):
                raise SettingsError(f"{path}: [{table}] must be a table, got {short_repr(section)}")
            if table == "athena":
                leaked = sorted(key for key in section if key.lower() in CREDENTIAL_KEYS)
                if leaked:
                    raise SettingsError(
                        f"{path}: [athena] holds {', '.join(leaked)}; remove them: credentials come from the "
                        "AWS chain (AWS_PROFILE, ~/.aws, SSO or a role), never from the app's settings")
            unknown = sorted(key for key in section if key not in fields)
            if unknown:
                raise SettingsError(f"{path}: unknown key(s) {', '.join(unknown)} in [{table}]; "
                                    f"expected {', '.join(fields)}")
            for key, value in section.items():
                if value == "":  # an empty string is unset, as in the environment
                    continue
                name = fields[key]
                if name == "athena_columns" and isinstance(value, dict):
                    # Pairs, not a dict: pydantic-settings deep-merges dicts across sources, and a
                    # mapping given by a higher source must replace this one, not add to it.
                    value = tuple(value.items())
                values[name] = value
                self._origins[name] = f"{path}: [{table}] {key}={short_repr(section[key])}"
        return values

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def read_settings_file(path: str | os.PathLike[str]) -> dict[str, object]:
    """The whole settings file as a dict (every table, Streamlit's too); {} when there is no file.
    A directory, an unreadable or a malformed file is a one-line SettingsError naming it."""
    path = Path(path)
    if path.is_dir():
        raise SettingsError(f"{path}: is a directory, expected a TOML settings file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read: {exc.strerror or first_line(exc)}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: cannot be read as TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: cannot be read as TOML: {first_line(exc)}") from None


# --- loading ----------------------------------------------------------------------------------------


def load_settings(overrides: Mapping[str, object] | None = None, *,
                  env: Mapping[str, str] | None = None) -> Settings:
    """The settings: `overrides` (field name -> value, e.g. command-line flags; None and empty values
    are ignored, as an unset flag), then the environment (`env`, default os.environ), then the
    settings file, then the defaults. Any problem is a one-line SettingsError naming its source."""
    # Values of any type: pydantic validates them below (a wrong one is a SettingsError naming it).
    given: dict[str, Any] = {name: value for name, value in (overrides or {}).items()
             if value is not None and not (isinstance(value, (str, dict, list, tuple)) and not value)}
    unknown = sorted(name for name in given if name not in Settings.model_fields)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(Settings.model_fields)}")
    origins = {name: f"{name}={short_repr(value)}" for name, value in given.items()}
    reading = _Reading(env=os.environ if env is None else env, env_origins={}, file_origins={})
    try:
        with _reading(reading):
            return Settings(**given)
    except ValidationError as exc:
        where = {**(reading.file_origins or {}), **(reading.env_origins or {}), **origins}
        raise SettingsError("; ".join(_describe(error, where) for error in exc.errors())) from None
    except _SourceError as exc:  # a source could not parse a value (not expected with NoDecode)
        raise SettingsError(first_line(exc.__cause__ or exc)) from None


@contextmanager
def _reading(reading: _Reading) -> Iterator[None]:
    token = _READING.set(reading)
    try:
        yield
    finally:
        _READING.reset(token)


def _describe(error: ErrorDetails, where: Mapping[str, str]) -> str:
    loc = error.get("loc") or ()
    name = str(loc[0]) if loc else ""
    origin = where.get(name) or (f"{name}={short_repr(error.get('input'))}" if name else "settings")
    return " ".join(f"{origin}: {_expected(error, name)}".split())


def _expected(error: ErrorDetails, name: str) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", error.get("msg", "")))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected a whole number"
    if kind in ("float_parsing", "float_type"):
        return "expected a number"
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("string_type", "path_type"):
        return "expected text"
    if kind == "finite_number":
        return "expected a finite number"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _range(name)
    if kind == "extra_forbidden":
        return "unknown setting"
    message = str(error.get("msg", "")).strip()
    return "expected " + (message[:1].lower() + message[1:] if message else "a valid value")


def _range(name: str) -> str:
    info = Settings.model_fields.get(name)
    bounds: dict[str, object] = {}
    for item in info.metadata if info else ():
        for attr in ("gt", "ge", "lt", "le"):
            if getattr(item, attr, None) is not None:
                bounds[attr] = getattr(item, attr)
    if "ge" in bounds and "le" in bounds:
        return f"expected {bounds['ge']}..{bounds['le']}"
    if bounds.get("gt") == 0:
        return "expected a positive number"
    if "ge" in bounds:
        return f"expected at least {bounds['ge']}"
    if "gt" in bounds:
        return f"expected more than {bounds['gt']}"
    return "expected a value in range"


__all__ = [
    "DEFAULT_SETTINGS_FILE",
    "SETTINGS_DOC",
    "SettingDoc",
    "Settings",
    "SettingsError",
    "env_names",
    "file_key",
    "load_settings",
    "read_settings_file",
]
