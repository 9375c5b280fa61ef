"""Upload folders end with their sessions, in a real server and browser: two tabs upload a file, one
tab closes, and once Streamlit's reconnect window (`server.disconnectedSessionTTL`, 2 s here) has
passed its private folder is gone while the open tab keeps its own. Stopping the server removes the
rest."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_browser_dashboard import CHROMIUM, settle, start_streamlit, wait_for_page
from tests.test_browser_dashboard import browser as browser  # the shared chromium fixture

pytestmark = pytest.mark.browser


def _session_folders(root: Path) -> set[Path]:
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _open_and_upload(browser, url: str, log: Path):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 1600})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(url + "/")
    wait_for_page(tab, "Overview")
    tab.locator("[data-testid=stSidebar] label", has_text="Upload a file").click()
    settle(tab)
    tab.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(log))
    settle(tab)
    tab.get_by_text("demo upload.parquet").first.wait_for()  # the upload is the data now, by its own name
    return context


def test_a_closed_sessions_upload_folder_is_removed(tmp_path: Path, demo_parquet: Path, browser) -> None:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    uploads = tmp_path / "up"
    log = tmp_path / "demo upload.parquet"
    shutil.copy(demo_parquet, log)
    env = {"RFM_UPLOAD_DIR": str(uploads), "RFM_DEMO_DATA": str(demo_parquet), "RFM_DATA": "",
           "RFM_SECRETS_TOML": str(tmp_path / "none.toml"), "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "2"}
    proc, url = start_streamlit(env, tmp_path / "streamlit.log")
    try:
        closing = _open_and_upload(browser, url, log)
        first = _session_folders(uploads)
        staying = _open_and_upload(browser, url, log)
        both = _session_folders(uploads)
        assert len(first) == 1 and len(both) == 2, both
        assert all(any(folder.iterdir()) for folder in both), "each session holds its upload"

        closing.close()
        deadline = time.monotonic() + 30
        while _session_folders(uploads) == both and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _session_folders(uploads) == both - first, "the closed tab's folder goes, the open tab's stays"
        staying.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert _session_folders(uploads) == set(), "the server's exit removes the folders it still tracked"
