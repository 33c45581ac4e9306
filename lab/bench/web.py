"""HTTP benchmarks of the API and the admin: a real WSGI server, latency, load, query counts.

Everything here talks to loopback only and is bounded: a fixed number of requests or a fixed
number of clients for a fixed time, and a timeout on every request.

- the server under test is ``lab.bench.server.gunicorn_server``.
- ``bench_superuser``: a throwaway superuser with a random password and an API token
  (``rest_framework.authtoken``; the API accepts ``Authorization: Token <key>``), deleted on
  exit. ``admin_login`` logs an ``httpx.Client`` in through the admin's login form.
- ``latency_measure``: N sequential requests after a warm-up; ``load_test``: C concurrent
  clients (threads) for T seconds; both count non-2xx answers and exceptions as errors.
- ``inprocess_measure``: the same through Django's test ``Client`` in this process, with the
  number of SQL queries per request (``CaptureQueriesContext``).

Latencies are wall-clock milliseconds from sending the request to having read the whole body.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from lab.bench.server import LOOPBACK

# Per-request timeout of the HTTP clients (seconds).
REQUEST_TIMEOUT_S = 30.0
# Error messages kept in a report (the first ones).
ERRORS_KEPT = 5
BENCH_SUPERUSER = "bench-superuser"

# httpx logs every request at INFO: thousands of lines that would also cost client time.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass(frozen=True)
class LatencyReport:
    """Sequential requests to one URL. Times in milliseconds over every answered request
    (errors included; ``None`` when nothing answered); ``queries`` per request when measured
    in-process (the largest count seen), else ``None``."""

    url: str
    count: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_messages: list[str] = field(default_factory=list)
    queries: int | None = None


@dataclass(frozen=True)
class LoadReport:
    """Concurrent clients for a fixed time. ``requests`` counts every request finished
    (answered or failed); ``throughput_rps`` is requests per second of wall-clock time."""

    urls: list[str]
    clients: int
    duration_s: float
    requests: int
    errors: int
    throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BenchCredentials:
    """A throwaway superuser: admin login (``username``/``password``) and API token."""

    user_id: int
    username: str
    password: str
    token: str

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


# --- users -------------------------------------------------------------------------------------


@contextmanager
def bench_superuser(*, username: str = BENCH_SUPERUSER) -> Iterator[BenchCredentials]:
    """Create (or take over) superuser ``username`` with a random password and an API token;
    delete the user (and so its token and sessions' user) on exit. The rows are committed, so
    a server subprocess sees them."""
    user_model = get_user_model()
    password = secrets.token_urlsafe(24)
    user, _created = user_model.objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    token, _created = Token.objects.get_or_create(user=user)
    try:
        yield BenchCredentials(
            user_id=user.pk, username=username, password=password, token=token.key
        )
    finally:
        user_model.objects.filter(pk=user.pk).delete()


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def admin_login(client: httpx.Client, *, base_url: str, credentials: BenchCredentials) -> None:
    """Log ``client`` in through the admin's login form (session and CSRF cookies stay in the
    client). Raises ``RuntimeError`` when the login is refused."""
    login_url = f"{base_url}/admin/login/"
    form = client.get(login_url, params={"next": "/admin/"})
    form.raise_for_status()
    match = _CSRF_INPUT.search(form.text)
    if match is None:
        raise RuntimeError("admin login page has no CSRF token")
    answer = client.post(
        login_url,
        params={"next": "/admin/"},
        data={
            "csrfmiddlewaretoken": match.group(1),
            "username": credentials.username,
            "password": credentials.password,
            "next": "/admin/",
        },
        headers={"Referer": login_url},
        follow_redirects=False,
    )
    if answer.status_code != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"admin login refused: HTTP {answer.status_code}")


# --- measuring ---------------------------------------------------------------------------------


def _percentiles(times_ms: Sequence[float]) -> dict[str, float | None]:
    if not times_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(np.asarray(times_ms, dtype=float), [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(max(times_ms)), 2),
    }


def _timed_get(client: httpx.Client, url: str) -> tuple[float | None, str | None]:
    """(milliseconds or None when no answer, error message or None)."""
    started = time.perf_counter()
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc} ({url})"
    elapsed_ms = (time.perf_counter() - started) * 1000
    if not 200 <= response.status_code < 300:
        return elapsed_ms, f"HTTP {response.status_code} {url}"
    return elapsed_ms, None


def latency_measure(
    url: str,
    *,
    requests: int = 200,
    warmup: int = 10,
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> LatencyReport:
    """Send ``warmup`` unmeasured then ``requests`` measured GETs to ``url``, one at a time.

    Uses ``client`` when given (e.g. logged in by ``admin_login``), else a new
    ``httpx.Client`` with ``headers``. Non-2xx answers and transport errors count as errors;
    a warm-up error is an error too.
    """
    own = client is None
    client = client or httpx.Client(headers=headers, timeout=timeout_s)
    times: list[float] = []
    messages: list[str] = []
    errors = 0
    try:
        for i in range(warmup + requests):
            elapsed_ms, error = _timed_get(client, url)
            if error:
                errors += 1
                if len(messages) < ERRORS_KEPT:
                    messages.append(error)
            if i >= warmup and elapsed_ms is not None:
                times.append(elapsed_ms)
    finally:
        if own:
            client.close()
    return LatencyReport(
        url=url, count=requests, errors=errors, error_messages=messages, **_percentiles(times)
    )


def load_test(
    urls: Sequence[str],
    *,
    clients: int = 32,
    duration_s: float = 60.0,
    headers: dict[str, str] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> LoadReport:
    """``clients`` threads, each with its own ``httpx.Client``, GET ``urls`` in turn (each
    thread starting at a different one) as fast as answers come, for ``duration_s`` seconds.

    A request started before the deadline may finish after it (at most ``timeout_s`` later).
    Non-2xx answers and transport errors count as errors. Raises ``ValueError`` for no URLs
    or fewer than one client.
    """
    if not urls:
        raise ValueError("load_test needs at least one URL")
    if clients < 1:
        raise ValueError(f"clients must be >= 1, not {clients}")
    lock = threading.Lock()
    times: list[float] = []
    messages: list[str] = []
    counts = {"requests": 0, "errors": 0}

    def note(error: str) -> None:
        with lock:
            if len(messages) < ERRORS_KEPT:
                messages.append(error)

    def client_loop(index: int, deadline: float) -> None:
        mine: list[float] = []
        done = failed = 0
        try:
            with httpx.Client(headers=headers, timeout=timeout_s) as client:
                turn = index
                while time.monotonic() < deadline:
                    elapsed_ms, error = _timed_get(client, urls[turn % len(urls)])
                    turn += 1
                    done += 1
                    if elapsed_ms is not None:
                        mine.append(elapsed_ms)
                    if error:
                        failed += 1
                        note(error)
        except Exception as exc:  # a failing client must not vanish from the counts
            failed += 1
            note(f"client {index} stopped: {type(exc).__name__}: {exc}")
        with lock:
            times.extend(mine)
            counts["requests"] += done
            counts["errors"] += failed

    began = time.monotonic()
    deadline = began + duration_s
    threads = [
        threading.Thread(target=client_loop, args=(i, deadline), daemon=True, name=f"load-{i}")
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0) + timeout_s + 5)
    elapsed = time.monotonic() - began
    stuck = sum(thread.is_alive() for thread in threads)
    with lock:
        if stuck:  # cannot happen while requests time out; reported rather than waited for
            counts["errors"] += stuck
            messages.append(f"{stuck} client thread(s) still running after the deadline")
        return LoadReport(
            urls=list(urls),
            clients=clients,
            duration_s=round(elapsed, 2),
            requests=counts["requests"],
            errors=counts["errors"],
            throughput_rps=round(counts["requests"] / elapsed, 1) if elapsed else 0.0,
            error_messages=list(messages),
            **_percentiles(times),
        )


def inprocess_measure(
    path: str,
    *,
    user=None,
    headers: dict[str, str] | None = None,
    requests: int = 50,
    warmup: int = 5,
) -> LatencyReport:
    """GET ``path`` through Django's test ``Client`` in this process: latency (ms, no network,
    no WSGI server) and SQL queries per request (the largest count seen).

    ``user`` is logged in with ``force_login`` (a session: two queries per request for the
    session and the user); ``headers`` go with every request (e.g. ``api_headers``).
    """
    # A 500 is an error to count here, not an exception to raise.
    client = Client(headers=headers, raise_request_exception=False, SERVER_NAME=LOOPBACK)
    if user is not None:
        client.force_login(user)
    times: list[float] = []
    messages: list[str] = []
    errors = 0
    queries = 0
    for i in range(warmup + requests):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            elapsed_ms = (time.perf_counter() - started) * 1000
        if not 200 <= response.status_code < 300:
            errors += 1
            if len(messages) < ERRORS_KEPT:
                messages.append(f"HTTP {response.status_code} {path}")
        if i >= warmup:
            times.append(elapsed_ms)
            queries = max(queries, len(captured.captured_queries))
    return LatencyReport(
        url=path,
        count=requests,
        errors=errors,
        error_messages=messages,
        queries=queries,
        **_percentiles(times),
    )


@dataclass(frozen=True)
class PageReport:
    """One admin page measured over HTTP (logged in through the login form) and in-process
    (``inprocess.queries``: SQL queries per request, session and user lookups included)."""

    path: str
    http: LatencyReport
    inprocess: LatencyReport


def admin_pages_measure(
    *,
    base_url: str,
    paths: Sequence[str],
    credentials: BenchCredentials,
    requests: int = 30,
    warmup: int = 3,
    inprocess_requests: int = 10,
) -> list[PageReport]:
    """Time admin pages (e.g. the anomaly changelist with and without filters) as the
    superuser of ``credentials``: over HTTP against ``base_url`` after logging in through the
    login form, then in this process through the test ``Client`` with query counts.

    ``paths`` start with ``/`` (``/admin/anomalies/anomaly/?status__exact=open``). Raises
    ``RuntimeError`` when the login is refused.
    """
    user = get_user_model().objects.get(pk=credentials.user_id)
    reports = []
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        admin_login(client, base_url=base_url, credentials=credentials)
        for path in paths:
            http = latency_measure(
                f"{base_url}{path}", requests=requests, warmup=warmup, client=client
            )
            local = inprocess_measure(path, user=user, requests=inprocess_requests, warmup=1)
            reports.append(PageReport(path=path, http=http, inprocess=local))
    return reports
