"""A failed run's traceback stays on the run for admins; the API shows others one line."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIRequestFactory

from anomalies.api.serializers import DetectionRunSerializer, error_summary
from anomalies.models import DetectionChunk
from tests.factories import DetectionRunFactory, UserFactory

pytestmark = pytest.mark.django_db

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/shelfwatch/anomalies/services/runs.py", line 380, in run_execute\n'
    "    frame = sales_load(...)\n"
    "pandas.errors.OutOfBoundsDatetime: Out of bounds nanosecond timestamp: 9999-12-31\n"
)
LAST_LINE = "pandas.errors.OutOfBoundsDatetime: Out of bounds nanosecond timestamp: 9999-12-31"


def _serialized(user) -> dict:
    run = DetectionRunFactory(status="failed", error=TRACEBACK)
    DetectionChunk.objects.create(run=run, index=0, location_ids=[1], error=f"chunk 0: {TRACEBACK}")
    request = APIRequestFactory().get("/api/v1/detection-runs/")
    request.user = user
    return DetectionRunSerializer(run, context={"request": request}).data


@pytest.mark.parametrize("kind", ["staff", "plain", "anonymous"])
def test_non_admins_get_the_last_line_only(kind):
    user = {
        "staff": lambda: UserFactory(is_staff=True),
        "plain": lambda: UserFactory(is_staff=False),
        "anonymous": AnonymousUser,
    }[kind]()

    data = _serialized(user)

    assert data["error"] == LAST_LINE
    assert data["error_traceback"] is None
    assert data["chunks"][0]["error"] == LAST_LINE
    assert data["chunks"][0]["error_traceback"] is None
    assert "runs.py" not in str(data)


def test_superusers_also_get_the_traceback():
    data = _serialized(UserFactory(is_superuser=True))

    assert data["error"] == LAST_LINE
    assert data["error_traceback"] == TRACEBACK
    assert data["chunks"][0]["error_traceback"].startswith("chunk 0: Traceback")


def test_error_summary_of_nothing_is_blank_and_long_lines_are_cut():
    assert error_summary("") == ""
    assert error_summary("\n\n") == ""
    assert len(error_summary("x" * 5000)) == 500


def test_api_list_shows_the_summary(api_client):
    DetectionRunFactory(status="failed", error=TRACEBACK)

    body = api_client.get("/api/v1/detection-runs/").json()

    assert body["results"][0]["error"] == LAST_LINE
