"""The harness itself: the budget counts what a person did and what the browser loaded, and
the guard catches foreign requests and console errors (else the other tests could not fail)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import Journey

pytestmark = pytest.mark.browser


def test_journey_counts_each_document_load_and_each_interaction(signed_in, estate):
    page = signed_in
    journey = Journey(page)

    journey.open("/admin/anomalies/anomaly/")
    journey.click(page.locator(f"a[href*='/anomaly/{estate.ghost.pk}/change/']").first)
    expect(page.locator("#anomaly-summary")).to_be_visible()
    journey.press("End")  # scrolls: an interaction, no load
    page.evaluate("location.hash = 'activity-log'")  # same document: no load
    journey.settle()

    assert len(journey.loads) == 2, journey.loads
    assert journey.loads[1].endswith(f"/anomaly/{estate.ghost.pk}/change/")
    assert len(journey.interactions) == 2, journey.interactions


def test_guard_blocks_other_hosts_and_records_console_and_page_errors(signed_in, page_guard):
    page = signed_in
    page.goto("/admin/")

    page.evaluate(
        """() => new Promise((resolve) => {
             const img = new Image();
             img.onerror = img.onload = resolve;
             img.src = "http://example.com/pixel.png";
           })"""
    )
    page.evaluate("console.error('boom from a test')")
    page.add_script_tag(content="throw new Error('uncaught in a test');")
    page.evaluate("1")  # one more round trip: the error's event has arrived

    problems = list(page_guard.problems)
    page_guard.problems.clear()  # seen: the page fixture must not fail this test for them
    assert any("request to another host: GET http://example.com/pixel.png" in p for p in problems)
    assert any("console error: boom from a test" in p for p in problems), problems
    assert any("page error: uncaught in a test" in p for p in problems), problems
