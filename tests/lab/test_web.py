"""The HTTP benchmark helpers, against Django's live server (and one real gunicorn): they
report what happened, errors included. Timings are not asserted: they belong to the bench."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from anomalies.api.views import AnomalyViewSet
from lab.bench import server, web
from tests.factories import AnomalyFactory

ANOMALIES = "/api/v1/anomalies/"
CHANGELIST = "/admin/anomalies/anomaly/"


@pytest.fixture
def credentials(transactional_db):
    with web.bench_superuser() as credentials:
        yield credentials


@pytest.fixture
def anomaly(transactional_db):
    return AnomalyFactory()


def test_latency_of_a_good_url_has_no_errors(live_server, credentials, anomaly):
    report = web.latency_measure(
        f"{live_server.url}{ANOMALIES}", requests=3, warmup=1, headers=credentials.api_headers
    )

    assert (report.count, report.errors, report.error_messages) == (3, 0, [])
    assert 0 < report.p50_ms <= report.p95_ms <= report.p99_ms <= report.max_ms


def test_latency_counts_not_found_and_unauthenticated_answers_as_errors(live_server, credentials):
    missing = web.latency_measure(
        f"{live_server.url}{ANOMALIES}999999/",
        requests=2,
        warmup=1,
        headers=credentials.api_headers,
    )
    anonymous = web.latency_measure(f"{live_server.url}{ANOMALIES}", requests=2, warmup=0)

    assert missing.errors == 3  # the warm-up request failed too
    assert missing.error_messages[0] == f"HTTP 404 {live_server.url}{ANOMALIES}999999/"
    assert missing.p50_ms is not None  # answered, just not with 2xx
    assert anonymous.errors == 2
    assert anonymous.error_messages[0].startswith("HTTP 401")


def test_latency_counts_server_errors(live_server, credentials, monkeypatch):
    def broken(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(AnomalyViewSet, "list", broken)

    report = web.latency_measure(
        f"{live_server.url}{ANOMALIES}", requests=2, warmup=0, headers=credentials.api_headers
    )

    assert report.errors == 2
    assert report.error_messages[0].startswith("HTTP 500")


def test_latency_counts_refused_connections_and_has_no_times():
    report = web.latency_measure(
        f"http://{server.LOOPBACK}:{server.free_port()}/", requests=2, warmup=0, timeout_s=2
    )

    assert report.errors == 2
    assert report.error_messages[0].startswith("ConnectError")
    assert report.p50_ms is None and report.max_ms is None


def test_load_test_runs_every_client_and_counts_errors(live_server, credentials, anomaly):
    good = f"{live_server.url}{ANOMALIES}"
    missing = f"{live_server.url}{ANOMALIES}999999/"

    ok = web.load_test([good], clients=2, duration_s=1.0, headers=credentials.api_headers)
    mixed = web.load_test(
        [good, missing], clients=2, duration_s=1.0, headers=credentials.api_headers
    )

    assert ok.requests >= 2 and ok.errors == 0 and ok.error_messages == []
    assert ok.throughput_rps > 0 and ok.p95_ms is not None
    assert ok.clients == 2 and ok.urls == [good]
    # Client 0 starts on the good URL, client 1 on the missing one; each alternates.
    assert 1 <= mixed.errors < mixed.requests
    assert mixed.error_messages[0] == f"HTTP 404 {missing}"


def test_load_test_needs_urls_and_clients():
    with pytest.raises(ValueError, match="URL"):
        web.load_test([], clients=1, duration_s=0.1)
    with pytest.raises(ValueError, match="clients"):
        web.load_test(["http://127.0.0.1:1/"], clients=0, duration_s=0.1)


def test_inprocess_measure_counts_queries(credentials, anomaly):
    report = web.inprocess_measure(ANOMALIES, headers=credentials.api_headers, requests=2, warmup=1)

    # The token (with its user), then the page of anomalies with product, location, assignee.
    assert (report.errors, report.queries) == (0, 2)


def test_admin_pages_are_measured_logged_in_with_query_counts(live_server, credentials, anomaly):
    reports = web.admin_pages_measure(
        base_url=live_server.url,
        paths=[CHANGELIST, f"{CHANGELIST}?status__exact=open", f"{CHANGELIST}{anomaly.pk}/change/"],
        credentials=credentials,
        requests=2,
        warmup=1,
        inprocess_requests=1,
    )

    assert [r.http.errors for r in reports] == [0, 0, 0]
    assert [r.inprocess.errors for r in reports] == [0, 0, 0]
    # Session, user, locations, categories, bounded count, page, the SLA targets and the saved
    # views (see test_list_query_budgets).
    assert [r.inprocess.queries for r in reports[:2]] == [8, 8]


def test_admin_login_with_a_wrong_password_is_refused(live_server, credentials):
    wrong = web.BenchCredentials(
        user_id=credentials.user_id,
        username=credentials.username,
        password="not-the-password",
        token=credentials.token,
    )
    with httpx.Client() as client, pytest.raises(RuntimeError, match="refused"):
        web.admin_login(client, base_url=live_server.url, credentials=wrong)


def test_bench_superuser_is_removed_with_its_token(transactional_db):
    with web.bench_superuser() as credentials:
        user = get_user_model().objects.get(pk=credentials.user_id)
        assert user.is_superuser and user.check_password(credentials.password)
        assert Token.objects.get(user=user).key == credentials.token

    assert not get_user_model().objects.filter(pk=credentials.user_id).exists()
    assert not Token.objects.filter(key=credentials.token).exists()


# Only guards against a hang: no test may depend on how fast this shared machine is, so the
# server may take as long as a loaded machine needs to start and answer.
HANG_GUARD_S = 600.0


def test_gunicorn_server_serves_and_stops():
    # An unauthenticated API request is refused before any database access, so this works
    # whatever database the subprocess is pointed at.
    with server.gunicorn_server(workers=1, start_timeout_s=HANG_GUARD_S) as base_url:
        report = web.latency_measure(
            f"{base_url}{ANOMALIES}", requests=2, warmup=0, timeout_s=HANG_GUARD_S
        )
        assert base_url.startswith(f"http://{server.LOOPBACK}:")
        assert report.errors == 2
        assert report.error_messages[0].startswith("HTTP 401")

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/", timeout=2)


def test_gunicorn_server_that_cannot_start_raises_with_its_log():
    with (
        pytest.raises(server.ServerError, match="exited"),
        server.gunicorn_server(
            workers=1,
            extra_env={"DJANGO_SETTINGS_MODULE": "no.such.settings"},
            start_timeout_s=HANG_GUARD_S,
        ),
    ):
        pass  # pragma: no cover
