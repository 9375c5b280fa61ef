"""`rfm dashboard`: the Streamlit dashboard behind its cache-warming launcher (what `make run` starts).

Sign-in: with an [auth] section in the settings file (Streamlit's OIDC: st.login) every page needs a
signed-in user with a role, and Streamlit listens where it is told. Without one the dashboard runs in
local mode: it listens on 127.0.0.1, and any other --server.address is refused (exit 2, one line).
Streamlit reads [auth] from the same settings file rfm does (passed as --secrets.files).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rfm.config import Settings, load_settings, read_settings_file
from rfm.errors import RfmError
from rfm.service.access import is_loopback

LAUNCHER = Path(__file__).resolve().parents[1] / "dashboard" / "launcher.py"
APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
LOCAL_ADDRESS = "127.0.0.1"
NOT_LOCAL = ("no sign-in is configured ([auth] in {file}): the dashboard only serves this machine; "
             "configure sign-in to listen on {address}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="open the dashboard (streamlit run, caches warmed before the first visitor)",
        description="Runs `streamlit run rfm/dashboard/launcher.py`; any further options are Streamlit's own, "
        "e.g. rfm dashboard --server.port 8600. Without sign-in ([auth] in the settings file) it listens on "
        "127.0.0.1 only.",
    )
    p.set_defaults(func=cmd_dashboard, passes_unknown_args=True)


def cmd_dashboard(args: argparse.Namespace) -> int:
    if not APP.is_file():
        raise RfmError(f"{APP}: missing; run `rfm dashboard` from a checkout of the project (pip install -e .)")
    streamlit = shutil.which("streamlit", path=os.path.dirname(sys.executable)) or shutil.which("streamlit")
    if streamlit is None:
        raise RfmError("streamlit is not installed in this environment (pip install -r requirements.txt)")
    # Streamlit reads its .streamlit/config.toml from the working directory, so the dashboard runs from the
    # project root. The settings are read here first, where the user is: a malformed settings file fails
    # now, in one line, and the paths they name keep meaning what they meant from here.
    settings = load_settings()
    streamlit_args = streamlit_arguments(list(args.streamlit_args), settings, os.environ)
    os.environ.update(_absolute_paths(settings))
    os.chdir(APP.parent)
    os.execv(streamlit, [streamlit, "run", str(LAUNCHER), *streamlit_args])
    return 0  # not reached: execv replaces the process


def streamlit_arguments(given: list[str], settings: Settings, env: Mapping[str, str]) -> list[str]:
    """The `streamlit run` options: the user's, plus the settings file as Streamlit's secrets file (so
    Streamlit's [auth] is the one in the user's settings file), the upload cap (`upload_max_mb`) as
    Streamlit's `server.maxUploadSize` and, without sign-in, 127.0.0.1 as the
    address. Without sign-in an address other than loopback is a one-line RfmError."""
    secrets = _option_values(given, "secrets.files")
    shown = ", ".join(secrets)
    args = list(given)
    if not secrets:
        secrets, shown = [_absolute(settings.settings_file)], str(settings.settings_file)
        args += ["--secrets.files", secrets[0]]
    if not _option_values(given, "server.maxUploadSize"):  # Streamlit's own body limit follows the setting
        args += ["--server.maxUploadSize", str(settings.upload_max_mb)]
    if _auth_configured(secrets):
        return args
    addresses = _option_values(given, "server.address") or (
        [env["STREAMLIT_SERVER_ADDRESS"]] if env.get("STREAMLIT_SERVER_ADDRESS") else [])
    for address in addresses:
        if not is_loopback(address):
            raise RfmError(NOT_LOCAL.format(file=shown, address=address or "0.0.0.0"))
    if not addresses:
        args += ["--server.address", LOCAL_ADDRESS]
    return args


def _option_values(args: Sequence[str], name: str) -> list[str]:
    """The values of a Streamlit option among `args` (`--name value` or `--name=value`, any number)."""
    values: list[str] = []
    flag = f"--{name}"
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _auth_configured(secrets: Sequence[str]) -> bool:
    """Whether the secrets Streamlit will read hold a non-empty [auth] section (TOML files; a folder of
    Kubernetes-style secrets counts when it has an auth entry). A malformed file is a SettingsError."""
    for location in secrets:
        path = Path(location)
        if path.is_dir():
            if (path / "auth").exists():
                return True
            continue
        auth = read_settings_file(path).get("auth")
        if isinstance(auth, dict) and auth:
            _check_auth(path, auth)
            return True
    return False


def _check_auth(path: Path, auth: dict[str, object]) -> None:
    """The keys st.login cannot work without, checked now rather than at a visitor's first sign-in."""
    missing = [key for key in ("redirect_uri", "cookie_secret") if not auth.get(key)]
    has_provider = "client_id" in auth or any(isinstance(v, dict) and "client_id" in v for v in auth.values())
    if not has_provider:
        missing.append("client_id (or an [auth.PROVIDER] table)")
    if missing:
        raise RfmError(f"{path}: [auth] is missing {', '.join(missing)}; see .streamlit/secrets.toml.example")


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _absolute_paths(settings: Settings) -> dict[str, str]:
    """The path settings as absolute paths, in the variables the dashboard's own `load_settings` reads."""
    paths = {
        "RFM_MODELS_DIR": _absolute(settings.models_dir),
        "RFM_DEMO_DATA": _absolute(settings.demo_data),
        "RFM_UPLOAD_DIR": _absolute(settings.upload_dir),
        "RFM_SECRETS_TOML": _absolute(settings.settings_file),
        "RFM_AUDIT_LOG": _absolute(settings.audit_log),
    }
    if settings.data:
        paths["RFM_DATA"] = ",".join(_absolute(p) for p in settings.data)
    paths["RFM_DATA_ROOTS"] = ",".join(_absolute(p) for p in settings.data_roots)
    return paths
