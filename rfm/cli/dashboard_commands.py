"""`rfm dashboard`: the Streamlit dashboard behind its cache-warming launcher (what `make run` starts)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from rfm.config import Settings, load_settings
from rfm.errors import RfmError

LAUNCHER = Path(__file__).resolve().parents[1] / "dashboard" / "launcher.py"
APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="open the dashboard (streamlit run, caches warmed before the first visitor)",
        description="Runs `streamlit run rfm/dashboard/launcher.py`; any further options are Streamlit's own, "
        "e.g. rfm dashboard --server.port 8600.",
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
    os.environ.update(_absolute_paths(settings))
    os.chdir(APP.parent)
    os.execv(streamlit, [streamlit, "run", str(LAUNCHER), *args.streamlit_args])
    return 0  # not reached: execv replaces the process


def _absolute_paths(settings: Settings) -> dict[str, str]:
    """The path settings as absolute paths, in the variables the dashboard's own `load_settings` reads."""
    def absolute(path: str | os.PathLike[str]) -> str:
        return os.path.abspath(os.path.expanduser(os.fspath(path)))

    paths = {
        "RFM_MODELS_DIR": absolute(settings.models_dir),
        "RFM_DEMO_DATA": absolute(settings.demo_data),
        "RFM_UPLOAD_DIR": absolute(settings.upload_dir),
        "RFM_SECRETS_TOML": absolute(settings.settings_file),
    }
    if settings.data:
        paths["RFM_DATA"] = ",".join(absolute(p) for p in settings.data)
    return paths
