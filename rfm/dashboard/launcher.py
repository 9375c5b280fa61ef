"""Serve the dashboard with its caches warm: `rfm dashboard` (what `make run` does) runs `streamlit run` on this file.

A plain `streamlit run streamlit_app.py` imports the libraries and computes the RFM table while its
first visitor waits. This launcher wraps the same app (streamlit_app.py, unchanged) in an `st.App`
whose lifespan does that work first (`rfm.dashboard.state.warm_caches`), before the server accepts a
connection, so the first visitor is served like every later one; then it freezes what the warm-up
left out of Python's garbage collection (see `warm_start`). Command-line options are the usual
`streamlit run` ones (`--server.port 8600`, ...).

Without sign-in configured ([auth] in the secrets file Streamlit reads) the lifespan refuses to serve
on anything but a loopback address (`rfm dashboard` passes --server.address 127.0.0.1 and checks too).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]


def declare_navigation_app() -> None:
    """Tell Streamlit up front that this app defines its pages with st.navigation.

    Streamlit learns that only when a session first calls st.navigation; until then a pages/ folder
    next to the entry script makes it run that first session the legacy way, and the visitor sees
    a list of file names in the sidebar for a moment. Setting the flag st.navigation itself sets
    avoids that; on a Streamlit without it, nothing changes but that first flash."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if hasattr(PagesManager, "uses_pages_directory"):
        PagesManager.uses_pages_directory = False


def refusal() -> str | None:
    """Why this server must not serve (one line), or None: without sign-in ([auth] in the secrets
    Streamlit read) it may listen only on a loopback address (Streamlit's own default is every one)."""
    from streamlit import config

    from rfm.dashboard.auth import auth_configured, local_mode_refusal

    return local_mode_refusal(config.get_option("server.address"), auth_configured())


@asynccontextmanager
async def warm_start(_app: st.App) -> AsyncIterator[None]:
    """Refuse to serve other machines without sign-in; warm the caches in a worker thread (the event
    loop stays free), then serve."""
    problem = refusal()
    if problem is not None:
        # Before the first request: the socket is bound but nothing is served. One line and exit 2
        # (raising here would have uvicorn print a traceback and exit 3).
        print(f"rfm dashboard: error: {problem}", file=sys.stderr, flush=True)
        os._exit(2)
    declare_navigation_app()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    # The cached functions run outside a session here: Streamlit warns about the missing script
    # context on each call, which is expected for this one-off.
    context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = context_log.level
    context_log.setLevel(logging.ERROR)
    try:
        from rfm.dashboard import state

        await asyncio.to_thread(state.warm_caches)
        print(f"  Caches warm in {time.perf_counter() - started:.1f} s.", flush=True)
    except Exception as exc:  # the page reports a bad source or model itself, in one line
        print(f"  Caches not warmed ({type(exc).__name__}: {exc}); the first visit computes them.", flush=True)
    finally:
        context_log.setLevel(level)
    # What exists now (the libraries' modules, classes and functions, the warm caches: about 0.2
    # million objects) lives as long as the server. Streamlit runs a full garbage collection after
    # every script run, and walking these objects made each one take ~0.15 s, in the way of the next
    # run (a page's first run after the "/" redirect, a rerun after a click). Frozen, the collections
    # walk only what sessions create since.
    gc.freeze()
    yield
    # Stopping (uvicorn ends with the signal's default action, so atexit would not run): every
    # session ends now, and with it its upload folder.
    from rfm.dashboard import uploads

    uploads.end_all_sessions()


app = st.App(str(ROOT / "streamlit_app.py"), lifespan=warm_start)

if __name__ == "__main__":
    app.run()
