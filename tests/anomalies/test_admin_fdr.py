"""False-discovery control in the admin: the triage list's false-alarm line and q-value column,
the detection run's expected false alarms, and the detection policy (change-only, permission)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from anomalies.admin.anomaly import AnomalyAdmin, false_alarm_sentence
from anomalies.detectors.fdr import FDR_Q_DEFAULT
from anomalies.models import DetectionPolicy
from anomalies.services.runs import DetectionDaySummary, detection_day_summary
from tests.anomalies.test_admin_query_budgets import ANOMALY_CHANGELIST_QUERIES, bulk_anomalies
from tests.factories import AnomalyFactory, DetectionRunFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:anomalies_anomaly_changelist")
POLICY_LIST = reverse("admin:anomalies_detectionpolicy_changelist")
DAY = dt.date(2026, 10, 31)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _summary(**kwargs) -> DetectionDaySummary:
    values = {
        "as_of": DAY,
        "new_findings": 37,
        "controlled": 37,
        "expected_false_alarms": 1.85,
        "q_min": 0.05,
        "q_max": 0.05,
    }
    return DetectionDaySummary(**(values | kwargs))


# --- the sentence ------------------------------------------------------------------------------


def test_sentence_states_the_expected_false_alarms_of_the_day():
    assert false_alarm_sentence(_summary()) == (
        "Of the 37 findings raised on 2026-10-31, about 1.9 are expected to be false alarms "
        "(FDR q = 0.05)."
    )


def test_sentence_says_which_findings_are_not_controlled():
    text = false_alarm_sentence(_summary(controlled=30, expected_false_alarms=1.5))

    assert text == (
        "Of the 37 findings raised on 2026-10-31, 30 passed false-discovery control "
        "(FDR q = 0.05): about 1.5 of those are expected to be false alarms. The other 7 come "
        "from detectors that give no p-value and are not controlled."
    )


def test_sentence_without_p_values_claims_no_rate():
    text = false_alarm_sentence(_summary(controlled=0, expected_false_alarms=0.0))

    assert text == (
        "None of the 37 findings raised on 2026-10-31 comes with a p-value, so no false-alarm "
        "rate can be stated for them."
    )


def test_sentence_for_other_days():
    assert false_alarm_sentence(None) == ""
    assert false_alarm_sentence(_summary(new_findings=0, controlled=0)) == (
        "No new findings were raised on 2026-10-31."
    )
    assert "without false-discovery control" in false_alarm_sentence(
        _summary(expected_false_alarms=None, q_min=None, q_max=None)
    )
    assert "FDR q = 0.05 to 0.1" in false_alarm_sentence(_summary(q_max=0.1))


# --- the day's summary -------------------------------------------------------------------------


def test_day_summary_adds_up_the_latest_days_succeeded_runs():
    DetectionRunFactory(as_of=DAY - dt.timedelta(days=1), fdr_q=0.05, new_findings=99)
    for new, controlled in ((30, 20), (7, 7)):
        DetectionRunFactory(
            as_of=DAY,
            fdr_q=0.05,
            new_findings=new,
            new_findings_controlled=controlled,
            expected_false_alarms=0.05 * controlled,
        )
    DetectionRunFactory(as_of=DAY + dt.timedelta(days=1), status="failed", new_findings=5)

    summary = detection_day_summary()

    assert summary == DetectionDaySummary(
        as_of=DAY,
        new_findings=37,
        controlled=27,
        expected_false_alarms=pytest.approx(1.35),
        q_min=0.05,
        q_max=0.05,
    )


def test_day_summary_without_runs_is_none():
    assert detection_day_summary() is None


# --- the triage list ---------------------------------------------------------------------------


def test_triage_list_states_the_days_false_alarms_without_a_query_more(admin_client):
    bulk_anomalies(30)
    DetectionRunFactory(
        as_of=DAY,
        fdr_q=0.05,
        new_findings=37,
        new_findings_controlled=37,
        expected_false_alarms=1.85,
    )

    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(CHANGELIST)

    assert len(ctx.captured_queries) == ANOMALY_CHANGELIST_QUERIES, ctx.captured_queries
    html = response.content.decode()
    assert (
        '<p class="false-alarm-summary" id="false-alarm-summary">Of the 37 findings raised on '
        "2026-10-31, about 1.9 are expected to be false alarms (FDR q = 0.05).</p>"
    ) in html


def test_triage_list_without_runs_says_nothing(admin_client):
    AnomalyFactory()

    response = admin_client.get(CHANGELIST)

    assert 'id="false-alarm-summary"' not in response.content.decode()


def test_q_value_column_is_shown_and_sorts(admin_client):
    low = AnomalyFactory(p_value=0.0001, q_value=0.004)
    high = AnomalyFactory(p_value=0.01, q_value=0.04)
    none = AnomalyFactory()
    column = AnomalyAdmin.list_display.index("q_value_column") + 1  # after the checkbox

    ascending = admin_client.get(CHANGELIST, {"o": str(column)})
    descending = admin_client.get(CHANGELIST, {"o": f"-{column}"})

    html = ascending.content.decode()
    assert '<td class="field-q_value_column">0.004</td>' in html
    ids = [a.pk for a in ascending.context["cl"].result_list]
    assert ids.index(low.pk) < ids.index(high.pk)
    ids = [a.pk for a in descending.context["cl"].result_list]
    assert ids.index(high.pk) < ids.index(low.pk)
    assert none.pk in ids


def test_change_page_shows_p_and_q_values(admin_client):
    anomaly = AnomalyFactory(p_value=0.00012, q_value=0.0036)

    html = admin_client.get(
        reverse("admin:anomalies_anomaly_change", args=[anomaly.pk])
    ).content.decode()

    assert "0.00012" in html and "0.0036" in html


# --- detection runs ----------------------------------------------------------------------------


def test_run_admin_states_expected_false_alarms(admin_client):
    run = DetectionRunFactory(
        fdr_q=0.05,
        hypotheses_tested=12_000,
        new_findings=40,
        new_findings_controlled=36,
        expected_false_alarms=1.8,
    )
    DetectionRunFactory()  # ran before the policy: no level

    listing = admin_client.get(reverse("admin:anomalies_detectionrun_changelist"))
    page = admin_client.get(reverse("admin:anomalies_detectionrun_change", args=[run.pk]))

    expected = (
        "1.8 of 36 new controlled finding(s) (FDR q = 0.05; 12,000 hypotheses tested); "
        "4 new without p-value, not controlled"
    )
    assert expected in listing.content.decode()
    assert expected in page.content.decode()
    assert "not controlled (run before the policy)" in listing.content.decode()


# --- the policy --------------------------------------------------------------------------------


def test_policy_list_opens_the_one_row(admin_client):
    response = admin_client.get(POLICY_LIST)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:anomalies_detectionpolicy_change", args=[1])
    assert admin_client.get(reverse("admin:anomalies_detectionpolicy_add")).status_code == 403
    delete = reverse("admin:anomalies_detectionpolicy_delete", args=[1])
    assert admin_client.get(delete).status_code == 403


def test_policy_row_is_created_when_missing(admin_client):
    DetectionPolicy.objects.all().delete()

    response = admin_client.get(POLICY_LIST)

    assert response.status_code == 302
    assert DetectionPolicy.objects.get().fdr_q == FDR_Q_DEFAULT


def test_changing_the_level_is_logged(admin_client, staff_user):
    url = reverse("admin:anomalies_detectionpolicy_change", args=[1])

    response = admin_client.post(url, {"fdr_q": "0.1"})

    assert response.status_code == 302
    assert DetectionPolicy.load().fdr_q == 0.1
    entry = LogEntry.objects.get(object_id="1", action_flag=CHANGE)
    assert entry.user == staff_user
    assert "false-discovery rate" in entry.get_change_message().lower()


@pytest.mark.parametrize("value", ["0", "-0.1", "0.51", "1"])
def test_level_outside_the_allowed_range_is_refused(admin_client, value):
    url = reverse("admin:anomalies_detectionpolicy_change", args=[1])

    response = admin_client.post(url, {"fdr_q": value})

    assert response.status_code == 200
    assert "at most 0.5" in response.content.decode()
    assert DetectionPolicy.load().fdr_q == FDR_Q_DEFAULT


def test_only_users_with_the_change_permission_edit_the_level(client):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_detectionpolicy", content_type__app_label="anomalies")
    )
    client.force_login(viewer)
    url = reverse("admin:anomalies_detectionpolicy_change", args=[1])

    page = client.get(url)
    post = client.post(url, {"fdr_q": "0.2"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    assert DetectionPolicy.load().fdr_q == FDR_Q_DEFAULT
