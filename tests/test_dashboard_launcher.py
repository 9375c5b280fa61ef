"""rfm/dashboard/launcher.py, the launcher `make run` starts: its lifespan warms the caches the first visit reads
and declares the app an st.navigation app before any session runs."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager

REPO = Path(__file__).resolve().parents[1]


def test_lifespan_warms_the_overview_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             demo_parquet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.setenv("RFM_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RFM_DEMO_DATA", str(demo_parquet))
    monkeypatch.setenv("RFM_DATA", "")
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "none.toml"))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)  # what a fresh server with pages/ starts with
    from rfm.config import load_settings
    from rfm.dashboard import launcher as dashboard
    from rfm.dashboard import state as app_state

    app_state.chart_spec.clear()
    app_state._files_dataset.clear()

    async def serve_once() -> None:
        async with dashboard.warm_start(None):
            pass

    asyncio.run(serve_once())
    assert PagesManager.uses_pages_directory is False
    assert "Caches warm in" in capsys.readouterr().out
    # The warmed entries are the ones a session asks for: calling again is a hit, not a recomputation.
    config = load_settings()
    request = app_state.default_request(config)
    calls: list[str] = []
    monkeypatch.setattr(app_state.datasets, "load_dataset", lambda *a, **k: calls.append("load") or None)
    dataset = app_state.load(request, "auto", "net", config)
    assert calls == [] and len(dataset.customers) > 0
