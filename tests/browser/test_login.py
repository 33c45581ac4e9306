"""Signing in through the admin's login form, as store staff."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_store_staff_signs_in_through_the_login_form_and_reaches_the_anomalies(page, store_staff):
    page.goto("/admin/")
    expect(page).to_have_url("/admin/login/?next=/admin/")

    page.fill("#id_username", "sam")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")

    expect(page).to_have_url("/admin/")
    expect(page.locator("#user-tools")).to_contain_text("sam")
    expect(page.locator("a[href='/admin/anomalies/anomaly/']").first).to_be_visible()
    # Detection set-up is the ops manager's: store staff do not get the link.
    expect(page.locator("a[href='/admin/anomalies/detectorconfig/']")).to_have_count(0)


def test_a_wrong_password_keeps_store_staff_on_the_login_form(page, store_staff):
    page.goto("/admin/login/?next=/admin/")

    page.fill("#id_username", "sam")
    page.fill("#id_password", "not-the-password")
    page.click("input[type=submit]")

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator("#user-tools")).to_have_count(0)
