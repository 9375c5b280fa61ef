"""`rfm dashboard`: the Streamlit dashboard behind its cache-warming launcher (what `make run` starts)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

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
    os.chdir(APP.parent)  # .streamlit/ (config, secrets) is read from the working directory
    os.execv(streamlit, [streamlit, "run", str(LAUNCHER), *args.streamlit_args])
    return 0  # not reached: execv replaces the process
