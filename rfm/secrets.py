"""`.streamlit/secrets.toml`: the settings file the dashboard, the CLI's Athena source and the scoring
client share (`RFM_SECRETS_TOML` names another file). Read with tomllib: rfm never imports streamlit."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rfm.errors import RfmError

DEFAULT_SECRETS = Path(".streamlit") / "secrets.toml"


def secrets_path(env: Mapping[str, str] | None = None, default: Path = DEFAULT_SECRETS) -> Path:
    """The settings file: `RFM_SECRETS_TOML`, else `default`."""
    env = os.environ if env is None else env
    return Path(env.get("RFM_SECRETS_TOML") or default)


def load_secrets(path: Path) -> dict[str, Any]:
    """The file's tables; a missing file is no settings, a malformed one an RfmError naming it."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RfmError(f"{path}: cannot be read as TOML: {exc}") from exc
