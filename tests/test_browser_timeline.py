"""The "Over time" page in a real browser (`rfm dashboard` on a free loopback port, Playwright with
Debian's chromium): the Sankey, the trend and the validation chart are drawn, the figures shown are the
service's, the one-click campaign list holds exactly the customers of the move (and is recorded in the
audit log), the R×F grid switch works, and screenshots at 1440 and 390 px land in tests/artifacts/."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rfm.data.table import compute_rfm
from rfm.model import ModelStore
from rfm.service import timeline
from rfm.service.datasets import FileSource
from tests.test_browser_dashboard import (
    ARTIFACTS,
    CHART_DRAWN,
    dashboard_server,
    no_errors,
    settle,
    wait_for_page,
)
from tests.test_browser_dashboard import browser as browser  # the shared chromium fixture

pytestmark = pytest.mark.browser

VEGA = "[data-testid=stVegaLiteChart]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_parquet: Path) -> Iterator[dict[str, object]]:
    audit = tmp_path_factory.getbasetemp() / "time-audit.jsonl"
    with dashboard_server(tmp_path_factory, demo_parquet, "browser-time", RFM_AUDIT_LOG=str(audit)) as running:
        yield {**running, "audit": audit}


def open_page(browser, server, width: int, height: int = 3600):  # type: ignore[no-untyped-def]
    """The page in a window tall enough for a whole-page screenshot (Streamlit scrolls inside its own
    container, which a full-page screenshot does not unroll)."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    tab.goto(str(server["url"]) + "/time")
    wait_for_page(tab, "Over time")
    return context, tab


def charts_drawn(tab, count: int) -> None:  # type: ignore[no-untyped-def]
    charts = tab.locator(VEGA)
    assert charts.count() == count
    for i in range(count):
        charts.nth(i).locator(CHART_DRAWN["stVegaLiteChart"]).first.wait_for()
    # Vega-Lite only: the page never makes the browser load plotly.js (4.7 MB) for its charts.
    assert tab.locator("[data-testid=stPlotlyChart]").count() == 0


def expected_tables(server, by: str):  # type: ignore[no-untyped-def]
    """What the page must show, from the service: the sidebar's defaults (demo data, snapshot the day
    after the log, net of returns, the promoted model)."""
    store: ModelStore = server["store"]  # type: ignore[assignment]
    snapshot = compute_rfm([server["demo"]]).snapshot
    model = store.load(store.current_version()) if by == "model" else None
    segments = timeline.segments_for(by, model)
    start = snapshot - timedelta(days=timeline.DEFAULT_LOOKBACK_DAYS)
    with timeline.opened(FileSource((str(server["demo"]),))) as log:
        moves = log.migration(start, snapshot, segments).table
        first = moves[moves["from_segment"] != moves["to_segment"]].iloc[0]
        listed = log.move_customers(start, snapshot, segments, first["from_segment"], first["to_segment"])
    return moves, first, listed


def test_time_page_shows_the_service_figures_and_downloads_a_campaign_list(browser, server) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, tab = open_page(browser, server, 1440)
    try:
        no_errors(tab)
        charts_drawn(tab, 4)  # Sankey, sizes over time, repeat rate, revenue per customer
        moves, first, listed = expected_tables(server, "model")
        metrics = tab.locator("[data-testid=stMetricValue]")
        assert metrics.nth(0).inner_text() == f"{int(moves['customers'].sum()):,}"
        sankey = tab.locator(VEGA).nth(0).inner_text()
        assert f"{first['to_segment']} · " in sankey
        button = tab.get_by_role("button", name=f"Download {len(listed):,} customers: "
                                                f"{first['from_segment']} → {first['to_segment']} (CSV)")
        with tab.expect_download() as info:
            button.click()
        download = info.value
        assert download.suggested_filename.startswith("rfm-move-") and download.suggested_filename.endswith(".csv")
        data = Path(download.path()).read_bytes()
        assert data == timeline.move_csv(listed)
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert {r["to_segment"] for r in rows} == {first["to_segment"]} and len(rows) == first["customers"]
        settle(tab)
        audit = [json.loads(line) for line in Path(str(server["audit"])).read_text().splitlines()]
        assert any(r["what"] == "export_move" and r["rows"] == len(listed) for r in audit)
        tab.wait_for_timeout(500)
        tab.screenshot(path=str(ARTIFACTS / "time-1440.png"), full_page=True)

        # The R×F grid: the same customers, other segments.
        tab.get_by_role("radio", name="R×F grid").click()
        settle(tab)
        no_errors(tab)
        charts_drawn(tab, 4)
        moves, first, listed = expected_tables(server, "rfm")
        assert tab.locator("[data-testid=stMetricValue]").nth(0).inner_text() == f"{int(moves['customers'].sum()):,}"
        tab.get_by_role("button", name=f"Download {len(listed):,} customers: "
                                       f"{first['from_segment']} → {first['to_segment']} (CSV)").wait_for()
        tab.wait_for_timeout(500)
        tab.screenshot(path=str(ARTIFACTS / "time-rfm-1440.png"), full_page=True)
    finally:
        context.close()


def test_time_page_on_a_phone(browser, server) -> None:  # type: ignore[no-untyped-def]
    context, tab = open_page(browser, server, 390, 7000)
    try:
        no_errors(tab)
        charts_drawn(tab, 4)
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width} px"
        tab.wait_for_timeout(500)
        tab.screenshot(path=str(ARTIFACTS / "time-390.png"), full_page=True)
    finally:
        context.close()


def test_a_horizon_past_the_data_is_one_error_line(browser, server) -> None:  # type: ignore[no-untyped-def]
    context, tab = open_page(browser, server, 1440)
    try:
        horizon = tab.get_by_label("Next period (days)")
        horizon.fill("400")
        horizon.press("Enter")
        settle(tab)
        errors = tab.locator("[data-testid=stAlertContentError]")
        assert errors.count() == 1
        assert "runs past the data" in errors.first.inner_text()
        charts_drawn(tab, 2)  # the movement and trend views still stand
        assert tab.locator("[data-testid=stException]").count() == 0
    finally:
        context.close()
