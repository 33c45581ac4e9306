"""The admin screens of the triage lifecycle: snooze, unsnooze and dismiss actions, concurrent
changes, the status column, notes and the change page.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from anomalies.models import Anomaly, AnomalyActivity
from anomalies.services import triage
from anomalies.services.triage import (
    anomalies_wake_snoozed,
    anomaly_acknowledge,
)
from tests.anomalies.triage_support import (
    ACK,
    DISMISSED,
    OPEN,
    RESOLVED,
    SNOOZED,
    activities,
)
from tests.factories import AnomalyFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:anomalies_anomaly_changelist")


# --- admin -------------------------------------------------------------------------------------


def post_action(client, action: str, anomalies: list[Anomaly], **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [a.pk for a in anomalies], "index": 0, **extra},
        follow=True,
    )


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_snooze_action_snoozes_seven_days_from_today(admin_client, monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: dt.date(2024, 2, 1))
    rows = [AnomalyFactory(), AnomalyFactory(status=ACK)]
    resolved = AnomalyFactory(status=RESOLVED)

    response = post_action(admin_client, "snooze_7_days", [*rows, resolved])

    assert messages_of(response) == [("success", "2 anomalies snoozed; 1 skipped (1 resolved).")]
    assert set(Anomaly.objects.filter(status=SNOOZED).values_list("snoozed_until", flat=True)) == {
        dt.date(2024, 2, 8)
    }


def test_unsnooze_action(admin_client):
    snoozed = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8))

    response = post_action(admin_client, "unsnooze", [snoozed, AnomalyFactory()])

    assert messages_of(response) == [("success", "1 anomaly unsnoozed; 1 skipped (1 open).")]
    snoozed.refresh_from_db()
    assert snoozed.status == OPEN


def test_dismiss_action_asks_for_a_reason_first(admin_client, staff_user):
    rows = [AnomalyFactory(), AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8))]

    page = admin_client.post(
        CHANGELIST, {"action": "dismiss", "_selected_action": [a.pk for a in rows], "index": 0}
    )

    assert page.status_code == 200
    assert page.templates[0].name == "admin/anomalies/anomaly/dismiss_selected.html"
    html = page.content.decode()
    assert "Dismiss 2 selected anomalies?" in html
    assert 'name="post" value="yes"' in html
    assert 'value="duplicate"' in html
    assert not AnomalyActivity.objects.exists()

    response = admin_client.post(
        CHANGELIST,
        {
            "action": "dismiss",
            "_selected_action": [a.pk for a in rows],
            "post": "yes",
            "reason": "duplicate",
            "note": "same as the store-level outage",
        },
        follow=True,
    )

    assert messages_of(response) == [("success", "2 anomalies dismissed.")]
    assert set(Anomaly.objects.values_list("status", "dismiss_reason")) == {
        (DISMISSED, "duplicate")
    }
    assert set(AnomalyActivity.objects.values_list("actor", "note")) == {
        (staff_user.pk, "reason: duplicate; same as the store-level outage")
    }


def test_dismiss_action_without_a_reason_shows_the_page_again(admin_client):
    anomaly = AnomalyFactory()

    page = admin_client.post(
        CHANGELIST,
        {"action": "dismiss", "_selected_action": [anomaly.pk], "post": "yes", "reason": "meh"},
    )

    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    anomaly.refresh_from_db()
    assert anomaly.status == OPEN


def test_action_hitting_a_concurrent_change_warns_and_changes_nothing(admin_client, monkeypatch):
    rows = [AnomalyFactory(), AnomalyFactory()]
    read = triage._lock_rows

    def read_then_other_writer(ids):
        found = read(ids)
        Anomaly.objects.filter(pk__in=ids).update(status=ACK)
        return found

    monkeypatch.setattr(triage, "_lock_rows", read_then_other_writer)

    response = post_action(admin_client, "resolve", rows)

    assert messages_of(response) == [
        (
            "warning",
            "2 anomalies were changed by someone else while this ran; nothing was changed, "
            "try again.",
        )
    ]
    assert not AnomalyActivity.objects.exists()


def test_changelist_status_column_filters_and_actions(admin_client):
    snoozed = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8))
    regressed = AnomalyFactory(regression_count=2, regressed_at=timezone.now())
    dismissed = AnomalyFactory(status=DISMISSED, dismiss_reason="expected")
    plain = AnomalyFactory()

    def ids(query: str) -> set[int]:
        response = admin_client.get(f"{CHANGELIST}?{query}")
        return {a.pk for a in response.context["cl"].result_list}

    html = admin_client.get(CHANGELIST).content.decode()
    assert "Snoozed until 2024-02-08" in html
    assert "Open · regressed ×2" in html
    assert "Dismissed (expected)" in html
    for action in ("snooze_7_days", "unsnooze", "dismiss"):
        assert f'value="{action}"' in html
    assert ids("status__exact=open") == {regressed.pk, plain.pk}  # snoozed: not on the list
    assert ids("status__exact=snoozed") == {snoozed.pk}
    assert ids("regressed=yes") == {regressed.pk}
    assert ids("regressed=no") == {snoozed.pk, dismissed.pk, plain.pk}
    assert ids("dismiss_reason__exact=expected") == {dismissed.pk}


def test_change_page_adds_notes_and_shows_system_entries(admin_client, staff_user):
    anomaly = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8))
    anomalies_wake_snoozed(today=dt.date(2024, 2, 8))
    change_url = reverse("admin:anomalies_anomaly_change", args=[anomaly.pk])
    note_url = reverse("admin:anomalies_anomaly_note", args=[anomaly.pk])

    page = admin_client.get(change_url).content.decode()
    assert f'action="{note_url}"' in page
    assert "<td>system</td>" in page
    # The note form comes after the change form's end: forms cannot nest.
    change_form_end = page.index("</form>", page.index('id="anomaly_form"'))
    assert page.index('id="note-form"') > change_form_end

    response = admin_client.post(note_url, {"note": "store says shelf is empty"})

    assert response.status_code == 302
    assert response["Location"] == change_url + "#activity-log"
    assert activities(anomaly)[-1] == ("ops", "note", OPEN, OPEN, "store says shelf is empty")
    assert "store says shelf is empty" in admin_client.get(change_url).content.decode()


def test_empty_note_is_refused_with_a_warning(admin_client):
    anomaly = AnomalyFactory()
    note_url = reverse("admin:anomalies_anomaly_note", args=[anomaly.pk])

    response = admin_client.post(note_url, {"note": ""}, follow=True)

    assert messages_of(response) == [("warning", "The note is empty; nothing was added.")]
    assert not AnomalyActivity.objects.exists()
    assert admin_client.get(note_url).status_code == 403


def test_change_page_shows_snooze_and_regression(admin_client, staff_user):
    anomaly = AnomalyFactory(status=SNOOZED, snoozed_until=dt.date(2024, 2, 8), regression_count=1,
                             regressed_at=timezone.now())  # fmt: skip

    html = admin_client.get(reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]))

    text = html.content.decode()
    assert "until 2024-02-08, or until detection finds it worse" in text
    assert "fired again after being resolved: 1 time," in text


def test_assignee_saved_on_a_page_that_went_stale_warns(admin_client, staff_user, monkeypatch):
    anomaly = AnomalyFactory()
    # Someone acknowledges it between the form's validation and the save.
    real_assign = triage.anomalies_assign

    def acknowledged_meanwhile(**kwargs):
        anomaly_acknowledge(anomaly_id=anomaly.pk, actor=staff_user)
        return real_assign(**kwargs)

    monkeypatch.setattr(triage, "anomalies_assign", acknowledged_meanwhile)

    response = admin_client.post(
        reverse("admin:anomalies_anomaly_change", args=[anomaly.pk]),
        {"assignee": staff_user.pk, "_save": "Save"},
        follow=True,
    )

    assert (
        "warning",
        f"Anomaly {anomaly.pk} was changed by someone else: now acknowledged.",
    ) in messages_of(response)
    assert [row[1] for row in activities(anomaly)] == ["acknowledge"]
