"""rfm/dashboard/launcher.py, the launcher `make run` starts: its lifespan warms the caches the first visit reads
and declares the app an st.navigation app before any session runs."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit import config as streamlit_config
from streamlit.runtime.pages_manager import PagesManager

from rfm.cli import dashboard_commands
from rfm.config import load_settings
from rfm.errors import RfmError
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]


def test_lifespan_warms_the_overview_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             demo_parquet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.setenv("RFM_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RFM_DEMO_DATA", str(demo_parquet))
    monkeypatch.setenv("RFM_DATA", "")
    monkeypatch.setenv("RFM_SECRETS_TOML", str(tmp_path / "none.toml"))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)  # what a fresh server with pages/ starts with
    real_option = streamlit_config.get_option
    monkeypatch.setattr(streamlit_config, "get_option",
                        lambda key: "127.0.0.1" if key == "server.address" else real_option(key))
    from rfm.config import load_settings
    from rfm.dashboard import launcher as dashboard
    from rfm.dashboard import state as app_state
    from rfm.dashboard import timeline_views as views

    app_state.chart_spec.clear()
    app_state._files_dataset.clear()
    app_state.sweep_for.clear()
    for loader in (views.migration, views.trend, views.validation, views.move_customers):
        loader.clear()

    async def serve_once() -> None:
        async with dashboard.warm_start(None):
            pass

    gc.unfreeze()
    try:
        asyncio.run(serve_once())
        # What the warm-up left (libraries, caches) is out of the full collection Streamlit runs after
        # every script run: that walk took ~0.15 s a run.
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert frozen > 50_000
    assert PagesManager.uses_pages_directory is False
    assert "Caches warm in" in capsys.readouterr().out
    # The warmed entries are the ones a session asks for: calling again is a hit, not a recomputation.
    config = load_settings()
    request = app_state.default_request(config)
    calls: list[str] = []
    monkeypatch.setattr(app_state.datasets, "load_dataset", lambda *a, **k: calls.append("load") or None)
    dataset = app_state.load(request, "auto", "net", config)
    assert calls == [] and len(dataset.customers) > 0
    # The Model page's first visit too: scikit-learn imported, the k sweep of this data cached.
    assert "sklearn.cluster" in sys.modules
    monkeypatch.setattr(app_state.models, "sweep", lambda *a, **k: calls.append("sweep"))
    result = app_state.sweep_for((*request.key, "auto", "net"), dataset)
    assert calls == [] and result.recommended_k >= 2
    # And the Segments page's charts without filters (what its first visit shows).
    from rfm.dashboard import charts

    for name in ("rf_heatmap", "rf_grid_chart", "customer_scatter"):
        monkeypatch.setattr(charts, name, lambda *a, _name=name, **k: calls.append(_name))
    model_store = app_state.store(config)
    ctx = app_state.build_context(dataset, (*request.key, "auto", "net"), config, model_store,
                                  app_state.models.default_version(model_store), "")
    assert ctx.segmentation is not None
    specs = app_state.segments_charts(ctx, ctx.segmentation.assigned)
    assert calls == [] and sorted(specs) == ["grid", "heatmap", "scatter"]
    from rfm.service import segmentation

    monkeypatch.setattr(segmentation, "segment_summary", lambda *a, **k: calls.append("segment_summary"))
    profiles = app_state.segment_profiles(ctx, ctx.segmentation.assigned)  # its profile table
    assert calls == [] and set(profiles["segment"]) == set(ctx.segmentation.assigned["segment"])
    monkeypatch.setattr(charts, "sweep_panel", lambda *a, **k: calls.append("sweep_panel"))
    panels = app_state.sweep_charts(ctx, result, result.recommended_k)  # the Model page as it opens
    assert calls == [] and list(panels) == [column for column, _, _ in charts.SWEEP_PANELS]
    # And the Over time page's first view (its default choices): its tables, campaign list and charts.
    from rfm.dashboard import timeline_charts
    from rfm.service import timeline

    for name in ("sankey", "sizes_over_time", "repeat_rate_chart", "revenue_per_customer_chart"):
        monkeypatch.setattr(timeline_charts, name, lambda *a, _name=name, **k: calls.append(_name))
    for name in ("migration", "trend", "validate", "move_customers"):
        monkeypatch.setattr(timeline.Timeline, name, lambda *a, _name=name, **k: calls.append(_name))
    view = views.time_view(ctx, views.by_choices(ctx)[0])
    assert view.by == "model"
    source, snapshot = views.source_of(ctx.data_key, ctx.settings), ctx.dataset.snapshot
    loaded = (view.returns, view.memory_limit, source, view.model)
    start = snapshot - timedelta(days=timeline.DEFAULT_LOOKBACK_DAYS)
    moves = views.migration(*view.common, start, snapshot, *loaded)
    views.sankey_spec(view, start, snapshot, moves)
    first = views.biggest_moves(moves).iloc[0]
    views.move_customers(*view.common, start, snapshot, first["from_segment"], first["to_segment"], *loaded)
    views.trend_spec(view, views.DEFAULT_EVERY, views.DEFAULT_MEASURE,
                     views.trend(*view.common, views.DEFAULT_EVERY, *loaded))
    checked = snapshot - timedelta(days=views.DEFAULT_CHECK_LOOKBACK_DAYS)
    views.validation_specs(view, checked, views.DEFAULT_HORIZON_DAYS,
                           views.validation(*view.common, checked, views.DEFAULT_HORIZON_DAYS, *loaded))
    assert calls == [] and int(moves["customers"].sum()) == len(dataset.customers)


# --- local mode: without sign-in, only this machine --------------------------------------------------

AUTH = """[auth]
redirect_uri = "http://dash.example:8501/oauth2callback"
cookie_secret = "a-long-random-cookie-secret-for-tests"
client_id = "rfm"
client_secret = "secret"
server_metadata_url = "https://idp.example/.well-known/openid-configuration"
"""
NOT_LOCAL = "no sign-in is configured ([auth] in"


def _args(given: list[str], secrets: Path, env: dict[str, str] | None = None) -> list[str]:
    """The options `rfm dashboard` passes, without the upload cap (checked on its own below)."""
    settings = load_settings({"settings_file": secrets}, env={})
    args = dashboard_commands.streamlit_arguments(given, settings, env or {})
    if "--server.maxUploadSize" in args and "--server.maxUploadSize" not in given:
        at = args.index("--server.maxUploadSize")
        assert args[at + 1] == str(settings.upload_max_mb)
        del args[at:at + 2]
    return args


def test_the_upload_cap_is_streamlits_body_limit_too(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    settings = load_settings({"settings_file": none, "upload_max_mb": 50}, env={})
    args = dashboard_commands.streamlit_arguments([], settings, {})
    assert args[args.index("--server.maxUploadSize") + 1] == "50"
    given = ["--server.maxUploadSize", "10"]
    assert dashboard_commands.streamlit_arguments(given, settings, {}).count("--server.maxUploadSize") == 1


def test_without_sign_in_rfm_dashboard_listens_on_loopback_only(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    assert _args(["--server.port", "8600"], none) == [
        "--server.port", "8600", "--secrets.files", str(none), "--server.address", "127.0.0.1"]
    for fine in (["--server.address", "localhost"], ["--server.address=::1"], ["--server.address", "127.0.0.1"]):
        assert _args(fine, none) == [*fine, "--secrets.files", str(none)]
    for bad in (["--server.address", "0.0.0.0"], ["--server.address=192.168.1.20"], ["--server.address", ""]):
        with pytest.raises(RfmError) as caught:
            _args(bad, none)
        assert "\n" not in str(caught.value)
        assert str(caught.value).startswith(f"no sign-in is configured ([auth] in {none}): the dashboard only "
                                            "serves this machine; configure sign-in to listen on ")
    with pytest.raises(RfmError, match=r"listen on 0\.0\.0\.0$"):
        _args([], none, {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})


def test_with_sign_in_the_address_is_the_users(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(AUTH)
    assert _args(["--server.address", "0.0.0.0"], secrets) == ["--server.address", "0.0.0.0",
                                                                "--secrets.files", str(secrets)]
    assert _args([], secrets) == ["--secrets.files", str(secrets)]  # Streamlit's default: every interface
    other = tmp_path / "other.toml"
    other.write_text(AUTH)
    given = ["--secrets.files", str(other), "--server.address", "0.0.0.0"]
    assert _args(given, tmp_path / "none.toml") == given
    secrets.write_text("[auth]\nclient_id = 'x'\n")
    with pytest.raises(RfmError, match=r"\[auth\] is missing redirect_uri, cookie_secret"):
        _args([], secrets)


def test_rfm_dashboard_refuses_a_lan_address_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "RFM_SECRETS_TOML": str(tmp_path / "none.toml")}
    done = subprocess.run([str(Path(sys.executable).with_name("rfm")), "dashboard", "--server.address", "0.0.0.0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"rfm dashboard: error: no sign-in is configured ([auth] in {tmp_path / 'none.toml'}): the dashboard only "
        "serves this machine; configure sign-in to listen on 0.0.0.0"]


def test_the_launcher_refuses_to_serve_other_machines_without_sign_in(tmp_path: Path) -> None:
    """`streamlit run rfm/dashboard/launcher.py` without --server.address (Streamlit's default is every
    interface) and without [auth]: the lifespan says why and the process exits 2 before serving."""
    streamlit = str(Path(sys.executable).with_name("streamlit"))
    (tmp_path / "none.toml").write_text("")
    base = [streamlit, "run", str(REPO / "rfm" / "dashboard" / "launcher.py"), "--server.port", str(free_port()),
            "--server.headless", "true", "--secrets.files", str(tmp_path / "none.toml")]
    env = {**os.environ, "RFM_SECRETS_TOML": str(tmp_path / "none.toml")}
    done = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("rfm dashboard: error: no sign-in is configured ([auth] in .streamlit/secrets.toml): the dashboard "
            "only serves this machine; configure sign-in to listen on 0.0.0.0") in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_launcher_refusal_reads_streamlits_address_and_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    from rfm.dashboard import auth
    from rfm.dashboard import launcher as dashboard

    for address, configured, refused in (("127.0.0.1", False, False), (None, False, True), ("0.0.0.0", False, True),
                                         ("10.0.0.5", False, True), ("0.0.0.0", True, False), (None, True, False)):
        monkeypatch.setattr(streamlit_config, "get_option",
                            lambda key, _a=address: _a if key == "server.address" else None)
        monkeypatch.setattr(auth, "auth_configured", lambda _c=configured: _c)
        assert (dashboard.refusal() is not None) is refused, (address, configured)
    assert auth.local_mode_refusal("10.0.0.5", False) == (
        "no sign-in is configured ([auth] in .streamlit/secrets.toml): the dashboard only serves this machine; "
        "configure sign-in to listen on 10.0.0.5")


def test_cmd_dashboard_passes_the_settings_file_and_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RFM_SECRETS_TOML", "mine.toml")
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    dashboard_commands.cmd_dashboard(argparse.Namespace(streamlit_args=["--server.port", "8600"]))
    [argv] = calls
    assert argv[1:] == ["run", str(dashboard_commands.LAUNCHER), "--server.port", "8600",
                        "--secrets.files", str(tmp_path / "mine.toml"), "--server.maxUploadSize", "200",
                        "--server.address", "127.0.0.1"]
    assert os.environ["RFM_AUDIT_LOG"] == str(tmp_path / ".data" / "audit.jsonl")


def test_the_warm_up_imports_what_pages_import_on_their_first_visit() -> None:
    """In a fresh interpreter (a test process may have imported them already): scikit-learn for the Model
    page, pandas' Styler (its Jinja templates compiled) for the first page with a table, Streamlit's emoji
    table for the first label that is not plain ASCII."""
    code = ("import sys\nfrom rfm.dashboard import state\n"
            "wanted = ('sklearn.cluster', 'pandas.io.formats.style', 'streamlit.emojis')\n"
            "before = [m for m in wanted if m in sys.modules]\n"
            "state._import_page_libraries()\n"
            "print(before, [m for m in wanted if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] ['sklearn.cluster', 'pandas.io.formats.style', 'streamlit.emojis']"
