"""Serve the dashboard with its caches warm: `streamlit run dashboard.py` (what `make run` does).

A plain `streamlit run streamlit_app.py` imports the libraries and computes the RFM table while its
first visitor waits. This launcher wraps the same app (streamlit_app.py, unchanged) in an `st.App`
whose lifespan does that work first (`app_state.warm_caches`), before the server accepts a
connection, so the first visitor is served like every later one. Command-line options are the
usual `streamlit run` ones (`--server.port 8600`, ...).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st

ROOT = Path(__file__).resolve().parent


@asynccontextmanager
async def warm_start(_app: Any) -> AsyncIterator[None]:
    """Warm the caches in a worker thread (the event loop stays free), then serve."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    # The cached functions run outside a session here: Streamlit warns about the missing script
    # context on each call, which is expected for this one-off.
    context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = context_log.level
    context_log.setLevel(logging.ERROR)
    try:
        import app_state

        await asyncio.to_thread(app_state.warm_caches)
        print(f"  Caches warm in {time.perf_counter() - started:.1f} s.", flush=True)
    except Exception as exc:  # the page reports a bad source or model itself, in one line
        print(f"  Caches not warmed ({type(exc).__name__}: {exc}); the first visit computes them.", flush=True)
    finally:
        context_log.setLevel(level)
    yield


app = st.App("streamlit_app.py", lifespan=warm_start)

if __name__ == "__main__":
    app.run()
