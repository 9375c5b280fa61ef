"""Sign-in in a real browser, through a real OIDC provider: `oidc-provider-mock` on 127.0.0.1 (in a thread of
this test), the dashboard started by `rfm dashboard` with an [auth] section pointing at it (the settings file
named by RFM_SECRETS_TOML, which `rfm dashboard` hands to Streamlit as its secrets file), Playwright with
Debian's chromium signing in on the provider's authorization form.

- a visitor who is not signed in sees the sign-in screen and no data (no metric, no table, no page list);
- a marketer (RFM_MARKETERS) sees the data and the export, and no retrain, save, rename or promote control;
- an analyst (RFM_ANALYSTS) sees them;
- a signed-in user without a role sees one line and no data.

(That the service refuses a marketer's retrain, rename and promotion even when called directly is
tests/test_access.py's job.) Screenshots in tests/artifacts/auth-*.png.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_browser_dashboard import (
    ARTIFACTS,
    dashboard_server,
    goto,
    settle,
    wait_for_page,
    wait_idle,
)
from tests.test_browser_dashboard import browser as browser  # the shared chromium fixture

pytestmark = pytest.mark.browser

MARKETER = "mia@shop.example"
ANALYST = "ann@shop.example"
NOBODY = "zed@other.example"
MODEL_CONTROLS = ("Retrain with k=", "Save names", "Promote ", "Rename", "Save as a new version")


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """oidc-provider-mock on a free loopback port; its issuer is the URL it is reached at."""
    import werkzeug.serving
    from oidc_provider_mock import User, app

    users = [User(sub=MARKETER, claims={"email": MARKETER, "name": "Mia Marketer"}),
             User(sub=ANALYST, claims={"email": ANALYST, "name": "Ann Analyst"}),
             User(sub=NOBODY, claims={"email": NOBODY, "name": "Zed Nobody"})]
    server = werkzeug.serving.make_server("127.0.0.1", 0, app(user_claims=users), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_parquet: Path, provider: str) -> Iterator[dict[str, object]]:
    secrets = tmp_path_factory.mktemp("browser-auth-secrets") / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'  # Streamlit puts its own port in
        'cookie_secret = "test-cookie-secret-0123456789abcdef"\n'
        'client_id = "rfm-dashboard"\n'
        'client_secret = "rfm-dashboard-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    audit = secrets.with_name("audit.jsonl")
    with dashboard_server(tmp_path_factory, demo_parquet, "browser-auth", RFM_SECRETS_TOML=str(secrets),
                          RFM_AUDIT_LOG=str(audit), RFM_MARKETERS=MARKETER, RFM_ANALYSTS=ANALYST) as running:
        yield {**running, "audit": audit}


def _context(browser, width: int = 1440):  # type: ignore[no-untyped-def]
    return browser.new_context(viewport={"width": width, "height": 1600 if width > 800 else 844},
                               accept_downloads=True)


def _sign_in_screen(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/")
    page.locator("h1", has_text="RFM segments").wait_for()
    wait_idle(page)


def _sign_in(page, url: str, who: str) -> None:  # type: ignore[no-untyped-def]
    """From the sign-in screen through the provider's authorization form and back."""
    _sign_in_screen(page, url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_placeholder("sub").wait_for()
    page.get_by_placeholder("sub").fill(who)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(url + "/**")


def _buttons(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The labels of the page's buttons, without their material icons' names."""
    labels: list[str] = page.locator("[data-testid=stMain] button").evaluate_all(
        "buttons => buttons.map(b => { const c = b.cloneNode(true);"
        " c.querySelectorAll('[data-testid=stIconMaterial]').forEach(i => i.remove());"
        " return c.textContent.trim(); })")
    return [label for label in labels if label]


def test_a_visitor_who_is_not_signed_in_sees_no_data(browser, server) -> None:  # type: ignore[no-untyped-def]
    for width in (1440, 390):
        context = _context(browser, width)
        page = context.new_page()
        page.set_default_timeout(60_000)
        _sign_in_screen(page, str(server["url"]))
        assert page.get_by_role("button", name="Sign in").is_visible()
        assert page.locator("[data-testid=stMetric]").count() == 0
        assert page.locator("[data-testid=stDataFrame], [data-testid=stTable]").count() == 0
        assert page.locator("[data-testid=stVegaLiteChart], [data-testid=stPlotlyChart]").count() == 0
        assert page.locator("[data-testid=stSidebarNav]").count() == 0
        # A deep link is no way around it.
        page.goto(f"{server['url']}/export")
        page.locator("h1", has_text="RFM segments").wait_for()
        wait_idle(page)
        assert page.locator("[data-testid=stMetric], [data-testid=stDataFrame]").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"auth-sign-in-{width}.png"), full_page=True)
        context.close()


def test_a_marketer_sees_data_and_export_but_no_model_controls(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser)
    page = context.new_page()
    page.set_default_timeout(60_000)
    url = str(server["url"])
    _sign_in(page, url, MARKETER)
    wait_for_page(page, "Overview")
    assert page.locator("[data-testid=stMetric]").count() >= 4
    sidebar = page.locator("[data-testid=stSidebar]")
    assert "Signed in as mia@shop.example (marketer)" in sidebar.inner_text()
    assert not [b for b in _buttons(page) if b.startswith("Retrain")]  # the fit warning's button is an analyst's
    page.screenshot(path=str(ARTIFACTS / "auth-marketer-overview.png"), full_page=True)

    goto(page, "Model")
    buttons = _buttons(page)
    assert not [b for b in buttons if b.startswith(MODEL_CONTROLS)], buttons
    assert "retraining, renaming and promoting are for analysts" in page.locator("[data-testid=stMain]").inner_text()
    assert page.locator("[data-testid=stDataFrame]").count() >= 2  # names and versions, read-only
    page.screenshot(path=str(ARTIFACTS / "auth-marketer-model.png"), full_page=True)

    goto(page, "Export")
    download = page.locator("[data-testid=stDownloadButton] button")
    assert download.is_visible()
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename.endswith(".csv")
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "auth-marketer-export.png"), full_page=True)
    audit = Path(str(server["audit"])).read_text().splitlines()
    assert any('"who": "mia@shop.example"' in line and '"what": "export"' in line for line in audit)
    context.close()


def test_an_analyst_sees_the_model_controls(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser)
    page = context.new_page()
    page.set_default_timeout(60_000)
    url = str(server["url"])
    _sign_in(page, url, ANALYST)
    wait_for_page(page, "Overview")
    assert "Signed in as ann@shop.example (analyst)" in page.locator("[data-testid=stSidebar]").inner_text()
    goto(page, "Model")
    buttons = _buttons(page)
    assert any(b.startswith("Retrain with k=") for b in buttons), buttons
    assert "Save names and playbook" in buttons and "Rename" in buttons
    assert any(b.startswith("Retrain k=") for b in buttons)  # the fit warning's one-click retrain
    page.screenshot(path=str(ARTIFACTS / "auth-analyst-model.png"), full_page=True)
    context.close()


def test_a_user_without_a_role_sees_one_line_and_no_data(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser)
    page = context.new_page()
    page.set_default_timeout(60_000)
    url = str(server["url"])
    _sign_in(page, url, NOBODY)
    page.get_by_text("no role gives you access").wait_for()
    wait_idle(page)
    assert page.locator("[data-testid=stMetric], [data-testid=stDataFrame]").count() == 0
    assert page.locator("[data-testid=stSidebarNav]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "auth-no-role.png"), full_page=True)
    context.close()
