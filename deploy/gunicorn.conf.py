"""gunicorn settings for ShelfWatch's web process (``gunicorn -c deploy/gunicorn.conf.py
config.wsgi:application``), from the environment through the typed helpers of
``config/settings.py`` (a bad value is an error at start, not a silent default).

- ``PORT`` (8000) on ``GUNICORN_BIND_HOST`` (``0.0.0.0``), or ``GUNICORN_BIND`` as a whole.
- ``WEB_CONCURRENCY``: worker processes (default 2 per core + 1, at most 8). Each holds its
  own database connection per thread: keep workers x threads x web machines below PostgreSQL's
  ``max_connections`` together with the Celery workers.
- ``GUNICORN_THREADS`` (1): threads per worker; above 1 the workers are ``gthread``.
- ``GUNICORN_TIMEOUT`` (60 s): a request running longer gets its worker killed and restarted.
- ``GUNICORN_GRACEFUL_TIMEOUT`` (30 s): time to finish in-flight requests on restart or stop.
- ``GUNICORN_KEEPALIVE`` (5 s): with threads, how long an idle keep-alive connection stays
  open; behind a load balancer that reuses connections set it above the balancer's idle timeout
  (else it may reuse one gunicorn just closed: sporadic 502s).
- ``GUNICORN_MAX_REQUESTS`` (1000, jittered): recycle a worker after this many requests
  (bounds slow memory growth, e.g. pandas in the dashboard); 0 turns it off.
- ``FORWARDED_ALLOW_IPS`` (``127.0.0.1``): proxies whose ``X-Forwarded-*`` headers gunicorn
  trusts.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

# gunicorn reads this file before it imports the application: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import env_int, env_str

_HOST = env_str("GUNICORN_BIND_HOST", "0.0.0.0")
bind = env_str("GUNICORN_BIND", f"{_HOST}:{env_int('PORT', 8000)}")
workers = env_int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8))
threads = env_int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max_requests // 10
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Logs to stdout/stderr: the process manager collects them.
accesslog = env_str("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = env_str("GUNICORN_LOG_LEVEL", "info")
# Worker heartbeat files in memory, not on a possibly slow (container overlay) disk.
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"
