"""Upload folders end with their sessions.

Streamlit calls no app code when a session ends, but its runtime knows which sessions are connected,
and a disconnected session can only come back within `server.disconnectedSessionTTL` seconds (after
that its state is gone). So a janitor thread, one per dashboard process, checks the sessions that own
an upload folder; a folder whose session has been disconnected for longer than that TTL is removed
(`datasets.end_upload_session`), and every tracked folder is removed when the server stops (the
launcher's lifespan calls `end_all_sessions`; atexit for a plain `streamlit run`). The 24-hour sweep
of `datasets.start_upload_session` stays as the backstop for a killed process.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable

import streamlit as st

from rfm.service import datasets


class UploadJanitor:
    """Removes each tracked upload folder once its session has been gone for `grace_s` seconds.

    Pure bookkeeping around two injected functions (is the session alive? remove the folder), so the
    rules are tested without a server; `start` runs `sweep` every `period_s` on a daemon thread."""

    def __init__(self, *, is_alive: Callable[[str], bool], grace_s: float, period_s: float,
                 remove: Callable[[str], object] = datasets.end_upload_session,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._is_alive = is_alive
        self._grace_s = grace_s
        self._period_s = period_s
        self._remove = remove
        self._clock = clock
        self._lock = threading.Lock()
        self._folders: dict[str, tuple[str, float]] = {}  # folder -> (session id, last seen alive)
        self._thread: threading.Thread | None = None

    def track(self, folder: str, session_id: str) -> None:
        with self._lock:
            self._folders[folder] = (session_id, self._clock())

    def tracked(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def sweep(self) -> list[str]:
        """Remove the folders of sessions gone for longer than the grace period; returns them."""
        now = self._clock()
        ended: list[str] = []
        with self._lock:
            for folder, (session_id, last_alive) in list(self._folders.items()):
                if self._is_alive(session_id):
                    self._folders[folder] = (session_id, now)
                elif now - last_alive > self._grace_s:
                    del self._folders[folder]
                    ended.append(folder)
        for folder in ended:
            self._remove(folder)
        return ended

    def remove_all(self) -> None:
        """At process exit every session ends: remove every tracked folder."""
        with self._lock:
            folders, self._folders = list(self._folders), {}
        for folder in folders:
            self._remove(folder)

    def start(self) -> None:
        if self._thread is not None:
            return

        def run() -> None:
            while True:
                time.sleep(self._period_s)
                try:
                    self.sweep()
                except Exception:  # a janitor must outlive one bad sweep
                    continue

        self._thread = threading.Thread(target=run, name="rfm-upload-janitor", daemon=True)
        self._thread.start()
        atexit.register(self.remove_all)


def _session_is_connected(session_id: str) -> bool:
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().is_active_session(session_id)


_STARTED: list[UploadJanitor] = []


@st.cache_resource(show_spinner=False)
def janitor() -> UploadJanitor:
    """The process's janitor, started on first use; grace = Streamlit's reconnect window."""
    ttl = float(st.get_option("server.disconnectedSessionTTL"))
    period = max(1.0, min(30.0, ttl / 4))
    started = UploadJanitor(is_alive=_session_is_connected, grace_s=ttl + period, period_s=period)
    started.start()
    _STARTED.append(started)
    return started


def end_all_sessions() -> None:
    """The server is stopping, so every session ends: remove every tracked upload folder."""
    for started in _STARTED:
        started.remove_all()


def track_session_folder(folder: str) -> None:
    """Remove `folder` when the current session ends (no-op outside a running Streamlit server)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        janitor().track(folder, ctx.session_id)
