"""The benchmark's WSGI server: gunicorn (``config.wsgi``) on ``127.0.0.1:<free port>`` as a
subprocess against the caller's database, with ``DEBUG`` off, a throwaway ``SECRET_KEY`` and
persistent database connections, the way production runs it; stopped on exit."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
from django.conf import settings
from django.db import connection

LOOPBACK = "127.0.0.1"
# How long gunicorn may take to answer its first request (seconds).
SERVER_START_TIMEOUT_S = 30.0
# Gunicorn kills a worker whose request runs longer than this (seconds).
WORKER_TIMEOUT_S = 30
# Persistent database connections of the server's workers (seconds), as in production.
SERVER_CONN_MAX_AGE_S = 60


class ServerError(RuntimeError):
    """The benchmark server did not start (its log is in the message)."""


# --- server ------------------------------------------------------------------------------------


def database_url() -> str:
    """``DATABASE_URL`` of the default connection as configured now (in tests: the test
    database), so a server subprocess reads the same data as the caller."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"no DATABASE_URL for {connection.vendor}")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(
    *,
    workers: int = 2,
    threads: int = 1,
    port: int | None = None,
    db_url: str | None = None,
    conn_max_age_s: int = SERVER_CONN_MAX_AGE_S,
    extra_env: dict[str, str] | None = None,
    start_timeout_s: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """Run ``gunicorn config.wsgi`` on ``127.0.0.1:<port>`` and yield its base URL
    (``http://127.0.0.1:<port>``, no trailing slash).

    ``workers`` sync worker processes (``threads`` > 1 makes them threaded workers), database
    ``db_url`` (default: this process's, see ``database_url``), ``DEBUG`` off, a random
    ``SECRET_KEY``, ``ALLOWED_HOSTS`` for loopback, ``DB_CONN_MAX_AGE=conn_max_age_s``.
    ``extra_env`` overrides any of these. Waits until the server answers an HTTP request.
    On exit sends SIGTERM (then SIGKILL after 10 s) to the gunicorn master it started.

    Raises ``ServerError`` with gunicorn's log when it exits early or does not answer within
    ``start_timeout_s``.
    """
    port = port or free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        "DATABASE_URL": db_url or database_url(),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": f"{LOOPBACK},localhost",
        "DB_CONN_MAX_AGE": str(conn_max_age_s),
        # No collectstatic here: plain static storage, or admin pages fail on the manifest.
        "SHELFWATCH_STATIC_MANIFEST": "false",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"{LOOPBACK}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        str(WORKER_TIMEOUT_S),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryFile(mode="w+", prefix="gunicorn-") as log:
        process = subprocess.Popen(
            command,
            cwd=Path(settings.BASE_DIR),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(process, base_url, log, start_timeout_s)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen, base_url: str, log, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"gunicorn exited with {process.returncode}:\n{_read(log)}")
        try:
            # Any HTTP answer (a redirect to the admin) means a worker is serving.
            httpx.get(f"{base_url}/", timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise ServerError(f"gunicorn did not answer within {timeout_s:.0f} s:\n{_read(log)}")


def _read(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:]
