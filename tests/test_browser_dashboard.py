"""The dashboard in a real browser: `streamlit run` on a free loopback port, driven by Playwright with
Debian's chromium. Visits every page (screenshots in tests/artifacts/), retrains with k=5 and saves,
renames segments (in the naming table and with the rename form), scores the seed's example customer,
downloads a CSV.

The server gets a temporary copy of models/ and a small generated demo log, so nothing in the
repository is written. Expected values come from the library (compute_rfm + ModelStore).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from rfm.data.table import compute_rfm
from rfm.model import ModelStore
from tests.helpers import free_port

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGES = ("Overview", "Segments", "Model", "Score", "Export")
# What a drawn chart holds, per chart element: plotly's SVG, Vega's SVG (or canvas) of marks.
CHART_DRAWN = {"stPlotlyChart": ".main-svg", "stVegaLiteChart": "svg.marks, canvas.marks"}
VEGA_DRAWN = "[data-testid=stVegaLiteChart] svg.marks, [data-testid=stVegaLiteChart] canvas.marks"


def start_streamlit(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`rfm dashboard` (what `make run` runs: the app behind its cache-warming launcher)
    on a free loopback port; returns once /_stcore/health is ok."""
    port = free_port()
    rfm = Path(sys.executable).with_name("rfm")
    proc = subprocess.Popen(
        [str(rfm), "dashboard", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("streamlit did not become healthy within 60 s")


@contextlib.contextmanager
def dashboard_server(tmp_path_factory: pytest.TempPathFactory, demo_parquet: Path, name: str,
                     **extra_env: str) -> Iterator[dict[str, object]]:
    """`rfm dashboard` on the demo log with a temporary copy of models/ (nothing in the repository is
    written), stopped afterwards; yields its url, store, demo log, log file and folder."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp(name)
    models = tmp / "models"
    shutil.copytree(REPO / "models", models)
    env = {"RFM_MODELS_DIR": str(models), "RFM_DEMO_DATA": str(demo_parquet), "RFM_UPLOAD_DIR": str(tmp / "up"),
           "RFM_SECRETS_TOML": str(tmp / "none.toml"), "RFM_DATA": "",
           # the tests' own files are allowed data, so a bad file is refused for its content, not its place
           "RFM_DATA_ROOTS": str(tmp_path_factory.getbasetemp()), **extra_env}
    proc, url = start_streamlit(env, tmp / "streamlit.log")
    try:
        yield {"url": url, "store": ModelStore(models), "demo": demo_parquet, "log": tmp / "streamlit.log",
               "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_parquet: Path) -> Iterator[dict[str, object]]:
    with dashboard_server(tmp_path_factory, demo_parquet, "browser") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 2200}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(server["url"] + "/")
    wait_for_page(tab, "Overview")
    yield tab
    context.close()


_SCRIPT_STATE = "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"


def wait_idle(page, settle_ms: int = 300, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Until the script run has finished: the app's script state (as Streamlit's own end-to-end tests
    read it) is not running, and no skeleton placeholder is left; then `settle_ms` more (the benchmarks,
    which time this wait, pass 0)."""
    page.wait_for_function(
        f"() => {{ const s = {_SCRIPT_STATE}; return s && s !== 'running' && s !== 'rerunRequested'"
        " && !document.querySelector('[data-testid=stSkeleton]'); }", timeout=timeout_ms)
    if settle_ms:
        page.wait_for_timeout(settle_ms)


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """After an action that may rerun the script: give the rerun a moment to start, then wait it out."""
    with contextlib.suppress(PlaywrightTimeoutError):  # no rerun, or it finished already
        page.wait_for_function(f"() => {_SCRIPT_STATE} === 'running'", timeout=1_500)
    wait_idle(page)


def choose(page, combobox, name: str) -> None:  # type: ignore[no-untyped-def]
    """Pick `name` in a selectbox. A rerun that starts while its list is open redraws the selectbox and
    detaches the list ("element was detached from the DOM", then a 60 s timeout: about one run in four
    of the rename step); the list is opened again then, up to five times."""
    for _ in range(5):
        settle(page)
        combobox.click()
        try:
            page.get_by_role("option", name=name, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {name!r} in the selectbox")


def wait_for_page(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("h1", has_text=title).wait_for()
    wait_idle(page)


def goto(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()
    wait_for_page(page, title)


def wait_until(condition, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Poll `condition` (e.g. what the app wrote to the models directory) until true, or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def active_version(page) -> str:  # type: ignore[no-untyped-def]
    """The active model version, as the sidebar states it."""
    header = page.locator("[data-testid=stSidebar]").inner_text()
    match = re.search(r"Active model (\S+) · k=\d+", header)
    assert match, header
    return match.group(1)


def no_errors(page) -> None:  # type: ignore[no-untyped-def]
    assert page.locator("[data-testid=stException]").count() == 0, page.locator(
        "[data-testid=stException]").first.inner_text()
    errors = page.locator("[data-testid=stAlertContentError]")
    assert errors.count() == 0, errors.first.inner_text()


def test_every_page_renders_with_charts_and_screenshots(page, server) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    version = server["store"].current_version()
    # (plotly charts, Vega-Lite charts) on each page, in CHART_DRAWN's order
    expected_charts = {"Overview": (0, 3), "Segments": (0, 3), "Model": (0, 5), "Score": (0, 0), "Export": (0, 0)}
    for title in PAGES:
        if title != "Overview":
            goto(page, title)
        no_errors(page)
        assert version in page.locator("[data-testid=stCaptionContainer]").first.inner_text()
        for kind, expected in zip(CHART_DRAWN, expected_charts[title], strict=True):
            charts = page.locator(f"[data-testid={kind}]")
            assert charts.count() == expected, (title, kind)
            for i in range(expected):  # each one drawn, not just placed
                charts.nth(i).locator(CHART_DRAWN[kind]).first.wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / f"{title.lower()}.png"))


def test_retrain_k5_save_then_rename_in_the_table(page, server) -> None:  # type: ignore[no-untyped-def]
    store: ModelStore = server["store"]
    before = set(store.list_versions())
    goto(page, "Model")
    slider = page.get_by_role("slider").first
    slider.focus()  # an <input type=range>: keyboard steps of 1
    for _ in range(12):
        wait_idle(page)
        value = int(slider.input_value())
        if value == 5:
            break
        slider.press("ArrowRight" if value < 5 else "ArrowLeft")
    assert slider.input_value() == "5"
    wait_idle(page)
    page.get_by_role("button", name="Retrain with k=5").click()
    page.get_by_text("New model (k=5, not saved yet)").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text("Saved version").wait_for()
    settle(page)
    new = sorted(set(store.list_versions()) - before)
    assert len(new) == 1 and store.load(new[0]).k == 5
    assert new[0] in page.locator("[data-testid=stSidebar]").inner_text()  # now the active version
    page.screenshot(path=str(ARTIFACTS / "model-after-retrain.png"))

    # Rename cluster 0 of the new (active) version in the naming table (st.data_editor): double-click
    # the name cell, fill the grid's cell editor, Enter, then "Save names". (Typing key by key into the
    # grid right after the double-click raced the editor's focus and lost edits now and then; filling
    # the editor once it exists did not, over 18 trials.)
    old = store.load(new[0]).segment_name(0)
    editor = page.locator("[data-testid=stDataFrame]").filter(
        has=page.locator("th", has_text="Recommended action")).last
    editor.scroll_into_view_if_needed()
    editor.dblclick(position={"x": 120, "y": 35 + 17})  # row 0 (cluster 0), column "name"
    cell = page.locator("textarea.gdg-input")
    cell.fill("VIP Buyers")
    cell.press("Enter")
    save = page.get_by_role("button", name="Save names and playbook")
    expect(save).to_be_enabled(timeout=30_000)
    wait_idle(page)
    save.click()
    wait_until(lambda: store.load(new[0]).segment_name(0) == "VIP Buyers")
    wait_idle(page)

    # And cluster 1 through the page's one-line rename form.
    old_1 = store.load(new[0]).segment_name(1)
    form = page.locator("[data-testid=stForm]").filter(has=page.get_by_role("button", name="Rename"))
    form.scroll_into_view_if_needed()
    choose(page, form.get_by_role("combobox").first, old_1)
    form.get_by_label("New name").fill("Steady Regulars")
    form.get_by_role("button", name="Rename").click()
    wait_until(lambda: store.load(new[0]).segment_name(1) == "Steady Regulars")
    wait_idle(page)

    goto(page, "Segments")
    no_errors(page)
    scatter = page.locator("[data-testid=stVegaLiteChart]").last  # its legend names the model's segments
    scatter.locator(CHART_DRAWN["stVegaLiteChart"]).first.wait_for()
    legend = scatter.text_content() or ""
    assert "VIP Buyers" in legend and "Steady Regulars" in legend
    assert old not in legend and old_1 not in legend
    page.screenshot(path=str(ARTIFACTS / "segments-after-rename.png"))


def test_score_the_example_customer(page, server) -> None:  # type: ignore[no-untyped-def]
    goto(page, "Score")
    page.get_by_role("button", name="Score").click()
    page.locator("[data-testid=stPlotlyChart] .main-svg").first.wait_for()
    wait_idle(page)
    no_errors(page)
    store: ModelStore = server["store"]
    version = active_version(page)
    expected = store.load(version).predict_names([15, 12, 540.0])[0]
    assert page.locator("h3", has_text=expected).count() == 1
    assert f"model {version}" in page.get_by_text("scored by").inner_text()
    page.screenshot(path=str(ARTIFACTS / "score-example.png"))


def test_download_csv_has_the_segment_rows(page, server) -> None:  # type: ignore[no-untyped-def]
    goto(page, "Export")
    store: ModelStore = server["store"]
    version = active_version(page)
    model = store.load(version)
    target = model.segment_name(0)  # the default selection: the most valuable segment
    assigned = model.assign(compute_rfm([server["demo"]]).table)
    expected = assigned.loc[assigned["segment"] == target]
    assert page.locator("[data-testid=stMetricValue]").inner_text() == f"{len(expected):,}"
    with page.expect_download() as info:
        page.get_by_role("button", name=f"Download {len(expected):,} customers as CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == len(expected)
    assert {r["segment"] for r in rows} == {target}
    assert {r["customer_id"] for r in rows} == set(expected["customer_id"])
    by_id = expected.set_index("customer_id")
    for row in rows[:50]:
        assert float(row["monetary"]) == pytest.approx(by_id.loc[row["customer_id"], "monetary"])
    # The command line exports the very same file for the same data, model and segment.
    cli_out = Path(download.path()).with_name("cli-export.csv")
    done = subprocess.run([str(Path(sys.executable).with_name("rfm")), "export", "--data", str(server["demo"]),
                           "--models-dir", str(store.root), "--model", version, "--segment", target,
                           "--out", str(cli_out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert cli_out.read_bytes() == Path(download.path()).read_bytes()
    page.screenshot(path=str(ARTIFACTS / "export.png"))


def test_bad_path_shows_one_error_and_keeps_the_data(page, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "not-really.parquet"
    bad.write_text("this is not parquet\n")
    page.get_by_text("Local path", exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="File, glob or folder")
    box.fill(str(bad))
    box.press("Enter")
    page.locator("[data-testid=stAlertContentError]").wait_for()
    wait_idle(page)
    assert page.locator("[data-testid=stAlertContentError]").count() == 1
    assert page.locator("[data-testid=stException]").count() == 0
    message = page.locator("[data-testid=stAlertContentError]").inner_text()
    assert "not-really.parquet" in message and "outside the allowed data folders" not in message
    customers = len(compute_rfm([server["demo"]]).table)
    assert page.locator("[data-testid=stMetricValue]").first.inner_text() == f"{customers:,}"
    page.locator(VEGA_DRAWN).nth(2).wait_for()
    page.screenshot(path=str(ARTIFACTS / "bad-source.png"))


_RECORD_SIDEBAR_NAV = """
window.__navs = [];
new MutationObserver(() => {
  const nav = document.querySelector('[data-testid=stSidebarNav]');
  const text = nav ? nav.innerText : null;
  if (text && window.__navs[window.__navs.length - 1] !== text) window.__navs.push(text);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_first_visit_of_a_fresh_server_shows_only_the_app_pages(browser, tmp_path, demo_parquet) -> None:  # type: ignore[no-untyped-def]
    """The very first session of a new server never flashes Streamlit's legacy list of pages/ files,
    and the launcher logs that the caches were warmed before it served."""
    shutil.copytree(REPO / "models", tmp_path / "models")
    env = {"RFM_MODELS_DIR": str(tmp_path / "models"), "RFM_DEMO_DATA": str(demo_parquet),
           "RFM_SECRETS_TOML": str(tmp_path / "none.toml"), "RFM_DATA": ""}
    proc, url = start_streamlit(env, tmp_path / "streamlit.log")
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(_RECORD_SIDEBAR_NAV)
        tab = context.new_page()
        # A slowed-down CPU renders each message of the first run on its own, as a slow laptop does.
        context.new_cdp_session(tab).send("Emulation.setCPUThrottlingRate", {"rate": 6})
        tab.goto(url + "/")
        wait_for_page(tab, "Overview")
        navs = tab.evaluate("window.__navs")
        context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert navs, "the sidebar navigation never appeared"
    for text in navs:
        assert "page" not in text.lower().split(), text  # legacy entries read "overview page", ...
        assert [line for line in text.splitlines() if line in PAGES] == list(PAGES), text
    assert "Caches warm in" in (tmp_path / "streamlit.log").read_text()


# --- issue 15: the view in the URL, returns labels, the mapping step, a 390 px phone ------------------


HEADER = "[data-testid=stMain] [data-testid=stCaptionContainer] >> nth=0"  # the page's provenance line


def _open(browser, url: str, width: int = 1440, height: int = 2200):  # type: ignore[no-untyped-def]
    """A new browser session (a reload or a shared link is one) at `url`."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(url)
    return context, tab


def _query(tab) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(tab.url).query)


def _no_horizontal_overflow(tab) -> None:  # type: ignore[no-untyped-def]
    """Nothing wider than the window: no sideways scrolling of the page."""
    overflow = tab.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow} px wider than the window"


def test_pages_request_nothing_from_another_host(browser, server) -> None:  # type: ignore[no-untyped-def]
    """Offline or behind a locked-down proxy the dashboard works the same: every request of a visit to
    each page (scripts, fonts, icons, the tab's icon included) goes to the dashboard's own server."""
    from urllib.parse import urlparse

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    hosts: list[str] = []
    context.on("request", lambda request: hosts.append(urlparse(request.url).netloc or request.url[:40]))
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    try:
        tab.goto(server["url"])
        for title in (*PAGES, "Over time"):
            goto(tab, title)
            _draw_every_chart(tab, title)
        own = urlparse(server["url"]).netloc
        assert hosts, "no request was seen"
        assert {host for host in hosts if host != own and not host.startswith("data:")} == set()
        icon = tab.locator("link[rel='shortcut icon']").get_attribute("href") or ""
        assert icon.startswith("data:image/svg+xml"), icon[:80]
    finally:
        context.close()


@pytest.mark.parametrize("path", ["overview", "segments", "model", "score", "export"])
def test_deep_links_open_every_page(browser, server, path: str) -> None:  # type: ignore[no-untyped-def]
    context, tab = _open(browser, f"{server['url']}/{path}")
    try:
        wait_for_page(tab, path.capitalize())
        no_errors(tab)
        assert "Page not found" not in tab.locator("body").inner_text()
        assert tab.url.split("?")[0].rstrip("/").endswith(f"/{path}")
    finally:
        context.close()


def test_a_shared_link_restores_the_view_and_a_reload_keeps_it(browser, server) -> None:  # type: ignore[no-untyped-def]
    store: ModelStore = server["store"]
    version = store.current_version()
    target = store.load(version).segment_name(1)
    url = f"{server['url']}/segments?returns=exclude&snapshot=2011-11-01&model={version}&segments={target}"
    context, tab = _open(browser, url)
    try:
        wait_for_page(tab, "Segments")
        no_errors(tab)
        header = tab.locator(HEADER).inner_text()
        assert "snapshot 2011-11-01" in header and "returns ignored" in header and version in header
        chips = tab.locator("[data-testid=stMultiSelect]").first.inner_text()
        assert target in chips
        assert _query(tab)["segments"] == [target]
        tab.reload()
        wait_for_page(tab, "Segments")
        assert tab.locator(HEADER).inner_text() == header
        assert target in tab.locator("[data-testid=stMultiSelect]").first.inner_text()
        tab.screenshot(path=str(ARTIFACTS / "shared-link-segments-1440.png"), full_page=True)
    finally:
        context.close()


def test_returns_choice_relabels_every_figure_with_one_wording(page, server) -> None:  # type: ignore[no-untyped-def]
    sidebar = page.locator("[data-testid=stSidebar]")
    assert "Net of returns" in sidebar.inner_text()
    assert page.get_by_text("Revenue (net of returns)").count() == 1
    sidebar.get_by_text("Returns ignored", exact=True).click()
    settle(page)
    no_errors(page)
    body = page.locator("[data-testid=stMain]").inner_text()
    assert "Revenue (returns ignored)" in body and "Revenue (net" not in body
    assert "returns ignored" in page.locator(HEADER).inner_text()
    assert "returns exclude" not in body.lower() and "ignore returns" not in body.lower()
    assert _query(page)["returns"] == ["exclude"]
    revenue = page.locator("[data-testid=stMetric]", has_text="Revenue").locator("[data-testid=stMetricValue]")
    assert revenue.inner_text().startswith("£")
    page.screenshot(path=str(ARTIFACTS / "overview-returns-ignored-1440.png"), full_page=True)


def test_mapping_step_is_in_the_main_area(page, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "laden-export.csv"
    log.write_text("Kunde,Beleg,Zeitpunkt,Umsatz,Country\nA,1,2011-01-03,10.0,DE\nA,2,2011-02-01,30.0,DE\n"
                   "B,3,2011-01-20,5.5,AT\n")
    page.get_by_text("Local path", exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="File, glob or folder")
    box.fill(str(log))
    box.press("Enter")
    page.locator("h1", has_text="Map your columns").wait_for()
    wait_idle(page)
    main = page.locator("[data-testid=stMain]")
    assert "laden-export.csv" in main.inner_text()
    assert page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").count() == 0  # all in the page
    selects = main.locator("[data-testid=stSelectbox]")
    assert selects.count() == 7
    width = selects.first.bounding_box()["width"]
    assert width > 600, width  # full width, not a 250 px sidebar column
    assert main.locator("[data-testid=stMetric]").count() == 0  # no demo figures meanwhile
    assert "--map" in main.locator("[data-testid=stCode]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "mapping-1440.png"), full_page=True)
    for canonical, column in (("Customer id", "Kunde"), ("Invoice date", "Zeitpunkt"), ("Line amount (", "Umsatz")):
        choose(page, main.get_by_role("combobox", name=canonical), column)
    main.get_by_role("button", name="Apply mapping").click()
    wait_for_page(page, "Overview")
    no_errors(page)
    assert page.locator("[data-testid=stMetricValue]").first.inner_text() == "2"


def _draw_every_chart(tab, title: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page's charts are drawn (on Score, after scoring the example customer)."""
    if title == "Score":
        tab.get_by_role("button", name="Score").click()
        tab.locator("[data-testid=stPlotlyChart] .main-svg").first.wait_for()
        wait_idle(tab)
    for chart in range(tab.locator("[data-testid=stVegaLiteChart]").count()):
        tab.locator("[data-testid=stVegaLiteChart]").nth(chart).locator(CHART_DRAWN["stVegaLiteChart"]).first.wait_for()
    tab.wait_for_timeout(500)


@pytest.mark.parametrize("title", ["Overview", "Segments", "Model", "Score", "Export"])
def test_every_page_reads_at_390_px(browser, server, title: str) -> None:  # type: ignore[no-untyped-def]
    context, tab = _open(browser, f"{server['url']}/{title.lower()}", width=390, height=2400)
    try:
        wait_for_page(tab, title)
        no_errors(tab)
        _draw_every_chart(tab, title)
        _no_horizontal_overflow(tab)
        if title == "Model":  # the sweep panels stack: one above the other, not side by side
            boxes = [tab.locator("[data-testid=stVegaLiteChart]").nth(i).bounding_box() for i in range(5)]
            assert len({round(b["x"]) for b in boxes}) == 1 and all(b["width"] > 300 for b in boxes)
            assert [b["y"] for b in boxes] == sorted(b["y"] for b in boxes)
        tab.screenshot(path=str(ARTIFACTS / f"{title.lower()}-390.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("title", ["Overview", "Segments", "Model", "Score", "Export"])
def test_every_page_at_1440_px_fits_and_is_captured(browser, server, title: str) -> None:  # type: ignore[no-untyped-def]
    context, tab = _open(browser, f"{server['url']}/{title.lower()}", width=1440, height=3000)
    try:
        wait_for_page(tab, title)
        _draw_every_chart(tab, title)
        no_errors(tab)
        _no_horizontal_overflow(tab)
        for frame in range(tab.locator("[data-testid=stDataFrame]").count()):  # every table inside the page
            table = tab.locator("[data-testid=stDataFrame]").nth(frame)
            box = table.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1440
            # ... and its columns inside the table: no sideways scrolling within it either.
            hidden = table.locator(".dvn-scroller").first.evaluate("e => e.scrollWidth - e.clientWidth")
            assert hidden <= 1, f"{title}: table {frame} hides {hidden} px of columns"
        tab.screenshot(path=str(ARTIFACTS / f"{title.lower()}-1440.png"), full_page=True)
    finally:
        context.close()


def test_after_promoting_the_selector_says_promoted(page, server) -> None:  # type: ignore[no-untyped-def]
    """Runs last: it changes which version is promoted on the shared server."""
    store: ModelStore = server["store"]
    others = [v for v in store.list_versions() if v != store.current_version()]
    if not others:  # on its own (-k): make a version to promote
        store.save(store.load())
        others = [v for v in store.list_versions() if v != store.current_version()]
    target = others[-1]
    goto(page, "Model")
    button = page.locator("[data-testid=stSidebar] [data-testid=stPopoverButton]").locator("visible=true")
    label = button.locator("[data-testid=stMarkdownContainer]")  # the button's text, without its icon
    assert label.inner_text() != target
    button.click()
    page.locator("[data-testid=stPopoverBody]").get_by_text(target, exact=True).click()
    settle(page)
    assert active_version(page) == target
    page.keyboard.press("Escape")
    page.get_by_role("button", name=f"Promote {target}").click()
    page.get_by_text(f"Promoted {target}.").wait_for()
    settle(page)
    assert store.current_version() == target
    assert label.inner_text() == f"{target} (promoted)"
    button.click()
    options = page.locator("[data-testid=stPopoverBody] [data-testid=stRadio] label").all_inner_texts()
    page.screenshot(path=str(ARTIFACTS / "model-after-promote-1440.png"))
    page.keyboard.press("Escape")
    assert [o for o in options if "(promoted)" in o] == [f"{target} (promoted)"], options


def _load_local_path(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text("Local path", exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="File, glob or folder")
    box.fill(text)
    box.press("Enter")
    settle(page)
    wait_for_page(page, "Overview")
    no_errors(page)


def test_a_duplicate_folder_counts_once_and_two_years_combine(page, server, tmp_path, online_retail_parquet,  # type: ignore[no-untyped-def]
                                                              online_retail_csv, online_retail_ii_parquet) -> None:
    """Issue 15 on the real files: the same log as .csv.gz and .parquet in one folder shows the single
    file's customers and revenue and names the repeated file; the 2009-10 and 2010-11 files, whose
    headers differ, load together."""
    folder = tmp_path / "retail"
    folder.mkdir()
    for path in (online_retail_parquet, online_retail_csv):
        shutil.copy(path, folder / path.name)
    single = compute_rfm([online_retail_parquet]).table
    _load_local_path(page, str(folder))
    metric = page.locator("[data-testid=stMetricValue]")
    assert metric.first.inner_text() == f"{len(single):,}"
    warning = page.locator("[data-testid=stAlertContentWarning]", has_text="repeats every line")
    assert warning.count() == 1 and "counted once" in warning.inner_text()
    page.screenshot(path=str(ARTIFACTS / "duplicate-folder-1440.png"), full_page=True)

    older = tmp_path / online_retail_ii_parquet.name
    shutil.copy(online_retail_ii_parquet, older)
    both = compute_rfm([older, folder / online_retail_parquet.name]).table
    _load_local_path(page, f"{older}, {folder / online_retail_parquet.name}")
    assert metric.first.inner_text() == f"{len(both):,}" and len(both) > len(single)
    assert "2009" in page.locator("[data-testid=stMain]").inner_text()
    page.set_viewport_size({"width": 390, "height": 2400})
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "two-years-390.png"), full_page=True)
