"""The main screens in Chromium: they load clean, the chart draws its data, the triage list
reads at 1280 px; the screenshots in docs/screenshots/ come from here (make screenshots)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORT
from tests.browser.support import screenshot

pytestmark = pytest.mark.browser

CHANGELIST = "/admin/anomalies/anomaly/"
DASHBOARD = "/admin/dashboard/"
# Today's id, and the contract's (the "detail" helper may move the id onto the canvas).
CHART_CANVAS = "canvas#anomaly-chart-canvas, canvas#anomaly-chart"
BAR_RGB = (65, 118, 144)  # "Units sold" bars, _chart.html
STOCK_RGB = (85, 85, 85)  # "On hand" line (#555)
# The headers a triager reads in the list, matched on their text (the columns may be renamed).
TRIAGE_HEADERS = {
    "status": re.compile(r"status", re.I),
    "assignee": re.compile(r"assign", re.I),
    "value at risk": re.compile(r"value at risk|money|at risk", re.I),
    "explanation": re.compile(r"explanation|why", re.I),
}

# Counts the chart-area pixels of one colour (within a tolerance: antialiasing), in device
# pixels of the canvas; the legend and the axes lie outside the chart area.
COUNT_PIXELS_JS = """
([selector, rgb]) => {
  const canvas = document.querySelector(selector);
  const chart = window.Chart && window.Chart.getChart(canvas);
  if (!chart) { return {error: "no Chart.js chart on " + selector}; }
  const ratio = chart.currentDevicePixelRatio || 1;
  const area = chart.chartArea;
  const x = Math.floor(area.left * ratio), y = Math.floor(area.top * ratio);
  const w = Math.floor((area.right - area.left) * ratio);
  const h = Math.floor((area.bottom - area.top) * ratio);
  const pixels = canvas.getContext("2d").getImageData(x, y, w, h).data;
  let painted = 0, matching = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] === 0) { continue; }
    painted++;
    if (Math.abs(pixels[i] - rgb[0]) <= 8 && Math.abs(pixels[i + 1] - rgb[1]) <= 8
        && Math.abs(pixels[i + 2] - rgb[2]) <= 8 && pixels[i + 3] > 100) { matching++; }
  }
  return {painted, matching, area: w * h, blank: canvas.toDataURL() ===
    Object.assign(document.createElement("canvas"), {width: canvas.width, height: canvas.height})
      .toDataURL()};
}
"""


def _anomaly_url(anomaly) -> str:
    return f"/admin/anomalies/anomaly/{anomaly.pk}/change/"


def test_the_chart_on_the_ghost_stock_page_draws_the_sales_bars_and_the_book_stock(
    signed_in, estate
):
    page = signed_in
    page.goto(_anomaly_url(estate.ghost))
    canvas = page.locator(CHART_CANVAS).first
    expect(canvas).to_be_visible()

    selector = "#" + canvas.get_attribute("id")
    bars = page.evaluate(COUNT_PIXELS_JS, [selector, list(BAR_RGB)])
    stock = page.evaluate(COUNT_PIXELS_JS, [selector, list(STOCK_RGB)])

    assert "error" not in bars, bars
    assert not bars["blank"]
    # 56 days, of which 42 sold 2-7 drills: bars fill a visible share of the chart area.
    assert bars["matching"] > bars["area"] * 0.01, bars
    # 33 units on hand (right axis) during the run and more before: the stepped line drew.
    assert stock["matching"] > 100, stock


@pytest.mark.parametrize(
    ("name", "path", "landmark"),
    [
        ("list", lambda estate: CHANGELIST, "#result_list"),
        ("anomaly", lambda estate: _anomaly_url(estate.ghost), "#anomaly-summary"),
        ("dashboard", lambda estate: DASHBOARD, "#kpi-tiles"),
    ],
    ids=["list", "anomaly", "dashboard"],
)
def test_screen_loads_with_no_console_error_and_no_other_host(
    signed_in, estate, page_guard, name, path, landmark
):
    page = signed_in

    response = page.goto(path(estate))
    page.wait_for_load_state("networkidle")

    assert response is not None and response.status == 200
    expect(page.locator(landmark)).to_be_visible()
    assert page_guard.problems == []
    screenshot(page, name, full_page=name == "anomaly")


def test_the_list_shows_only_the_users_store(signed_in, estate):
    page = signed_in
    page.goto(CHANGELIST)

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text(estate.drill.sku)
    expect(page.locator("#result_list")).not_to_contain_text(estate.other_store.code)


@pytest.mark.needs_triage_ui
def test_the_list_fits_1280_px_with_the_triage_columns_in_view(signed_in, estate):
    page = signed_in
    page.goto(CHANGELIST)
    expect(page.locator("#result_list")).to_be_visible()

    overflow = page.evaluate(
        """() => ["#changelist", "#changelist .results", "html"].map((selector) => {
             const el = document.querySelector(selector);
             return el && {selector, scroll: el.scrollWidth, client: el.clientWidth};
           }).filter(Boolean)"""
    )
    for box in overflow:
        assert box["scroll"] <= box["client"], f"horizontal scroll: {box}"
    headers = page.locator("#result_list thead th")
    for label, pattern in TRIAGE_HEADERS.items():
        header = headers.filter(has_text=pattern).first
        expect(header, f"no {label} column").to_be_visible()
        box = header.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], (label, box)
