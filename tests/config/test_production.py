"""The production configuration, booted as deployed (docs/DEPLOYMENT.md).

- ``check --deploy`` with ``deploy/production.env.example`` (and a generated ``SECRET_KEY``)
  reports no issue.
- ``collectstatic`` with the manifest storage succeeds (the vendored Chart.js included).
- The whole stack: a fresh PostgreSQL database migrated as a release does it, Redis as broker,
  result backend and cache, ``gunicorn -c deploy/gunicorn.conf.py`` with ``DEBUG=false`` and
  whitenoise serving a temporary ``STATIC_ROOT``, and a real ``celery worker`` process; all in
  subprocesses with the documented production environment. It checks that the admin CSS and
  Chart.js are served, ``/api/docs/`` loads (its assets local once drf-spectacular-sidecar is
  configured), ``/health/`` answers, and a detection run requested over the API completes on
  the worker.

The stack needs PostgreSQL (``SHELFWATCH_PROD_TEST_DATABASE_URL``, default a database
``shelfwatch_prod_e2e`` on 127.0.0.1:5432, dropped and recreated) and Redis
(``SHELFWATCH_PROD_TEST_REDIS_URL``, default db 14, flushed). Without them it skips locally; in
CI (``CI=true``) it fails instead. One test function, so that test distribution (xdist) never
boots two stacks on the same database and Redis.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import httpx
import pytest
from django.conf import settings

PROJECT_DIR = Path(settings.BASE_DIR)
ENV_EXAMPLE = PROJECT_DIR / "deploy" / "production.env.example"
GUNICORN_CONF = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
DATABASE_URL = os.environ.get(
    "SHELFWATCH_PROD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shelfwatch_prod_e2e"
)
REDIS_URL = os.environ.get("SHELFWATCH_PROD_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
LOOPBACK = "127.0.0.1"
# Only guards against a hang: no test may depend on how fast this shared machine is.
HANG_GUARD_S = 600.0
# What the load balancer in front adds to every request it forwards (TLS ends there).
VIA_PROXY = {"X-Forwarded-Proto": "https"}

SEED = """
import datetime as dt, json, secrets
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from tests.factories import DailySalesFactory, LocationFactory, ProductFactory

# 60 days of about 10 units a day for one SKU, then 600 units on the last day.
day0 = dt.date(2024, 1, 1)
product = ProductFactory(sku="SPIKE1", unit_price="3.00")
location = LocationFactory(code="W1")
for i in range(61):
    DailySalesFactory(
        product=product, location=location, date=day0 + dt.timedelta(days=i),
        units_sold=600 if i == 60 else 10 + (i % 3) - 1, unit_price="3.00",
    )
user = get_user_model().objects.create_superuser(
    "prodcheck", "prodcheck@example.com", secrets.token_urlsafe(16)
)
print(json.dumps({
    "token": Token.objects.create(user=user).key,
    "as_of": (day0 + dt.timedelta(days=60)).isoformat(),
}))
"""


def env_file_values(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped, no quoting)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def production_env(**overrides: str) -> dict[str, str]:
    """This process's environment, then the documented production one, then ``overrides``.

    ``DEBUG`` comes from the file (false), whatever the test settings set here.
    """
    return {
        **os.environ,
        **env_file_values(ENV_EXAMPLE),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        **overrides,
    }


def manage(*args: str, env: dict[str, str], timeout_s: float = HANG_GUARD_S) -> str:
    """Run ``manage.py`` with ``args``; return its stdout; fail with its output on an error."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_check_deploy_with_the_documented_environment_reports_no_issues():
    env = production_env()
    assert env["DEBUG"] == "false" and env["SECURE_SSL_REDIRECT"] == "true"
    out = manage("check", "--deploy", "--fail-level", "DEBUG", env=env)
    assert "System check identified no issues (0 silenced)." in out


def test_check_deploy_refuses_the_development_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_collectstatic_with_manifest_storage_succeeds(tmp_path):
    manage("collectstatic", "--noinput", env=production_env(STATIC_ROOT=str(tmp_path)))
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    chart = manifest["vendor/chartjs/chart.umd.min.js"]
    assert re.fullmatch(r"vendor/chartjs/chart\.umd\.min\.[0-9a-f]{12}\.js", chart)
    assert (tmp_path / chart).is_file()
    assert (tmp_path / f"{chart}.gz").is_file()  # whitenoise's compressed copy
    assert "admin/css/base.css" in manifest


def _gunicorn_config(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, "-m", "gunicorn", "--check-config", "--print-config"),
            *("--config", str(GUNICORN_CONF), "config.wsgi:application"),
        ],
        cwd=PROJECT_DIR,
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )


def test_gunicorn_config_reads_the_environment_and_refuses_junk():
    result = _gunicorn_config(
        WEB_CONCURRENCY="3", GUNICORN_THREADS="4", PORT="8123", GUNICORN_BIND_HOST=LOOPBACK
    )
    assert result.returncode == 0, result.stderr
    printed = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in result.stdout.splitlines())
    )
    assert printed["workers"] == "3"
    assert printed["threads"] == "4"
    assert printed["worker_class"] == "gthread"
    assert printed["bind"] == f"['{LOOPBACK}:8123']"
    assert printed["timeout"] == "60"

    junk = _gunicorn_config(GUNICORN_TIMEOUT="soon")
    assert junk.returncode != 0
    assert "GUNICORN_TIMEOUT='soon' is not an integer" in junk.stdout + junk.stderr


# --- the whole stack -------------------------------------------------------------------------


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or LOOPBACK, parts.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def _require_services() -> None:
    missing = [
        name
        for name, url, port in (("PostgreSQL", DATABASE_URL, 5432), ("Redis", REDIS_URL, 6379))
        if not _reachable(url, port)
    ]
    if missing:
        reason = f"{' and '.join(missing)} not reachable ({DATABASE_URL}, {REDIS_URL})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must boot the production configuration")
        pytest.skip(f"{reason}: start them to boot the production configuration")


def _maintenance(sql: str) -> None:
    import psycopg
    from psycopg import sql as psql

    config = dj_database_url.parse(DATABASE_URL)
    params = {
        "dbname": "postgres",
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        conn.execute(psql.SQL(sql).format(psql.Identifier(config["NAME"])))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def _process(command: list[str], *, env: dict[str, str], name: str) -> Iterator[subprocess.Popen]:
    """Start ``command``, its output in a temporary log (``process.log_text()``); on exit
    SIGTERM, then SIGKILL after 20 s."""
    with tempfile.TemporaryFile(mode="w+", prefix=f"{name}-") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )

        def log_text() -> str:
            log.flush()
            log.seek(0)
            return log.read()

        process.log_text = log_text  # type: ignore[attr-defined]
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


@dataclass
class Stack:
    base_url: str
    static_root: Path
    token: str
    as_of: str
    web: subprocess.Popen
    worker: subprocess.Popen

    def get(self, path: str, **kwargs) -> httpx.Response:
        headers = {**VIA_PROXY, **kwargs.pop("headers", {})}
        return httpx.get(f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**VIA_PROXY, "Authorization": f"Token {self.token}"}
        url = f"{self.base_url}{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)

    def logs(self) -> str:
        return f"--- gunicorn\n{self.web.log_text()}\n--- worker\n{self.worker.log_text()}"


def _wait_until_serving(web: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        assert web.poll() is None, f"gunicorn exited with {web.returncode}:\n{web.log_text()}"
        try:
            httpx.get(f"{base_url}/health/", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer:\n{web.log_text()}")


@pytest.fixture
def production_stack(tmp_path) -> Iterator[Stack]:
    _require_services()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    _maintenance("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    _maintenance("CREATE DATABASE {}")
    port = _free_port()
    env = production_env(
        DATABASE_URL=DATABASE_URL,
        CELERY_BROKER_URL=REDIS_URL,
        SHELFWATCH_CACHE_URL=REDIS_URL,
        ALLOWED_HOSTS=LOOPBACK,
        SHELFWATCH_BASE_URL=f"http://{LOOPBACK}:{port}",
        STATIC_ROOT=str(tmp_path / "static"),
        PORT=str(port),
        GUNICORN_BIND_HOST=LOOPBACK,
        WEB_CONCURRENCY="2",
        # Nothing in this test may reach a mail server.
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    try:
        # The release steps of docs/DEPLOYMENT.md.
        manage("migrate", "--noinput", env=env)
        manage("setup_schedules", env=env)
        manage("collectstatic", "--noinput", env=env)
        seeded = subprocess.run(
            [sys.executable, "-c", SEED],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
        seed = json.loads(seeded.stdout.strip().splitlines()[-1])
        worker_command = [
            *(sys.executable, "-m", "celery", "--app", "config", "worker"),
            *("--pool", "solo", "--loglevel", "INFO", "--hostname", "prodcheck@%h"),
            *("--without-gossip", "--without-mingle"),
        ]
        web_command = [
            *(sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)),
            "config.wsgi:application",
        ]
        with (
            _process(worker_command, env=env, name="worker") as worker,
            _process(web_command, env=env, name="gunicorn") as web,
        ):
            base_url = f"http://{LOOPBACK}:{port}"
            _wait_until_serving(web, base_url)
            yield Stack(
                base_url=base_url,
                static_root=tmp_path / "static",
                token=seed["token"],
                as_of=seed["as_of"],
                web=web,
                worker=worker,
            )
    finally:
        _maintenance("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _wait_for_run(stack: Stack, run_id: int) -> dict:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        run = stack.api("GET", f"/api/v1/detection-runs/{run_id}/").json()
        if run["status"] in ("succeeded", "failed"):
            return run
        assert stack.worker.poll() is None, f"the worker died:\n{stack.logs()}"
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish:\n{stack.logs()}")


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


def _assert_served(stack: Stack, url: str, content_type: str) -> httpx.Response:
    response = stack.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200, (url, response.status_code)
    assert response.headers["content-type"].startswith(content_type), (url, response.headers)
    return response


@pytest.mark.celery_worker
def test_production_configuration_serves_and_runs_detection_on_a_worker(production_stack):
    stack = production_stack

    # HTTPS only, except the health probe a load balancer sends straight to the instance.
    plain = httpx.get(f"{stack.base_url}/admin/login/", timeout=60)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
    health = httpx.get(f"{stack.base_url}/health/", timeout=60)
    assert health.status_code == 200, health.text
    assert health.headers["content-type"] == "application/json"
    checks = health.json()["checks"]
    assert {name: checks[name]["status"] for name in ("database", "cache", "broker")} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    # Schedules exist (setup_schedules ran) but nothing has run yet: a warning, not a 503.
    assert checks["detection"]["status"] == "warning"

    # The admin's CSS, by the hashed names the page links to, from whitenoise.
    login = stack.get("/admin/login/")
    assert login.status_code == 200
    assert login.headers["strict-transport-security"].startswith("max-age=31536000")
    css = [url for url in _asset_urls(login.text) if url.endswith(".css")]
    assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", url) for url in css), css
    for url in css:
        served = _assert_served(stack, url, "text/css")
        assert "immutable" in served.headers["cache-control"]
    # Chart.js (the dashboard's charts), by its name in the manifest, compressed.
    manifest = json.loads((stack.static_root / "staticfiles.json").read_text())["paths"]
    chart = _assert_served(
        stack, f"/static/{manifest['vendor/chartjs/chart.umd.min.js']}", "text/javascript"
    )
    assert chart.headers["content-encoding"] == "gzip"
    assert "Chart.js v4" in chart.text
    assert stack.get("/static/vendor/chartjs/missing.js").status_code == 404

    # A detection run requested over the API is queued (202) and finished by the worker.
    body = {"as_of": stack.as_of, "detectors": ["demand_spike"]}
    requested = stack.api("POST", "/api/v1/detection-runs/", json=body)
    assert requested.status_code == 202, requested.text
    # The response shows the run as it stands when written: the worker may have picked it
    # up already. That it ran in the worker, not in this request, is asserted below.
    assert requested.json()["status"] in ("pending", "running", "succeeded"), requested.text
    run = _wait_for_run(stack, requested.json()["id"])
    assert run["status"] == "succeeded", f"{run['error']}\n{stack.logs()}"
    assert run["counts"]["demand_spike"]["new"] == 1
    # The chunk ran in the worker process (solo pool: the task runs in its main process).
    assert [chunk["worker"] for chunk in run["chunks"]] == [
        f"{socket.gethostname()}:{stack.worker.pid}"
    ]
    anomalies = stack.api("GET", "/api/v1/anomalies/", params={"anomaly_type": "demand_spike"})
    assert anomalies.status_code == 200
    assert [a["actual_value"] for a in anomalies.json()["results"]] == [600]

    health = stack.get("/health/").json()
    assert health["status"] == "ok", health
    assert health["checks"]["detection"]["last_success_age_hours"] < 1

    # The API docs page renders (the schema it loads is the API's own).
    docs = stack.api("GET", "/api/docs/")
    assert docs.status_code == 200
    assert "SwaggerUIBundle" in docs.text or "swagger-ui" in docs.text
    assets = _asset_urls(docs.text)
    if "drf_spectacular_sidecar" not in settings.INSTALLED_APPS:
        pytest.xfail(
            "everything above passed; /api/docs/ still loads Swagger UI from a CDN "
            f"({[a for a in assets if '://' in a]}): drf-spectacular-sidecar comes from the API "
            "branch of issue 12, then the assertions below run"
        )
    external = [url for url in assets if "://" in url or url.startswith("//")]
    assert external == [], external
    for url in assets:
        assert stack.get(url).status_code == 200, url
