"""ShelfWatch settings: one file, driven by the environment.

Every setting that differs between a laptop and production is read from an environment
variable through the small typed helpers below, which raise ``ImproperlyConfigured`` on a
value they cannot parse (``DEBUG=Flase`` is an error, not silently true).

- ``DATABASE_URL``: default ``sqlite:///<project>/db.sqlite3`` so a fresh clone just runs.
- ``CELERY_BROKER_URL``: unset means tasks run eagerly, in-process.
- ``SECRET_KEY``: a development default that is refused when ``DEBUG`` is off.
- ``DEBUG``: default off; development asks for it (the Makefile's demo targets and the test
  settings set ``DEBUG=true``). Production: ``deploy/production.env.example``, docs/DEPLOYMENT.md.
- ``SHELFWATCH_LAB``: default on; ``false`` leaves the offline tooling (``lab``) out of production.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Return the environment variable ``name`` or ``default`` when unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean environment variable; raise ``ImproperlyConfigured`` on junk."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int) -> int:
    """Parse an integer environment variable; raise ``ImproperlyConfigured`` on junk."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    """Parse a float environment variable; raise ``ImproperlyConfigured`` on junk."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated environment variable into a list of non-empty strings."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off (on a developer's machine: DEBUG=true; "
        "production: docs/DEPLOYMENT.md)"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_celery_beat",
    "common",
    "inventory",
    "anomalies",
    "outcomes",
    "notifications",
]
# The lab (simulator, evaluation, benchmarks, demo walk-through) is offline tooling: production
# leaves it out with SHELFWATCH_LAB=false; nothing in the product imports it.
if env_bool("SHELFWATCH_LAB", True):
    INSTALLED_APPS.append("lab")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it turns a lockout flagged anywhere below into its 429 answer.
    "axes.middleware.AxesMiddleware",
]
if not DEBUG:
    # Static files from the web process itself, right after SecurityMiddleware as whitenoise
    # asks: with DEBUG off nothing else serves them (docs/DEPLOYMENT.md). With DEBUG on,
    # runserver serves them from the source folders.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite for a small team (README, "SQLite limits"): WAL lets the admin read while an import
    # or detection run writes; IMMEDIATE transactions take the write lock when they begin, so
    # two people triaging at once queue up behind the busy timeout (seconds) instead of one of
    # them failing with "database is locked" when a read transaction turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", env_int("SQLITE_BUSY_TIMEOUT", 30))
else:
    # A persistent connection that died (database restarted) is replaced, not reused.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Project static files, among them vendored JS (Chart.js) so admin charts work offline.
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production (DEBUG off): hashed, compressed file names from `collectstatic` (whitenoise serves
# them with far-future cache headers). It needs `collectstatic` to have run, so a process with
# DEBUG off on uncollected files (the benchmark's server) turns it off with
# SHELFWATCH_STATIC_MANIFEST=false.
SHELFWATCH_STATIC_MANIFEST = env_bool("SHELFWATCH_STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if SHELFWATCH_STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Production: HTTPS, proxy, cache (issue 12; docs/DEPLOYMENT.md) --------------------------
# Each off by default (a laptop serves plain HTTP); deploy/production.env.example turns them on,
# and `manage.py check --deploy` with it reports no issue.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# The load balancer's health probe often speaks plain HTTP to the instance: answer it there.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)


def _proxy_ssl_header(raw: list[str]) -> tuple[str, str] | None:
    """``SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https`` -> the (META key, value) pair
    Django expects; unset or empty -> None. Raises ``ImproperlyConfigured`` on another shape."""
    if not raw:
        return None
    if len(raw) != 2 or not raw[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={','.join(raw)!r}: use HTTP_<HEADER>,<value>, e.g. "
            "HTTP_X_FORWARDED_PROTO,https (only behind a proxy that sets that header itself)"
        )
    return (raw[0], raw[1])


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_list("SECURE_PROXY_SSL_HEADER", []))

# A cache shared by every web process (dashboard aggregates, DRF throttles): Redis when
# SHELFWATCH_CACHE_URL (or REDIS_URL) is set, else this process's memory.
_CACHE_URL = env_str("SHELFWATCH_CACHE_URL", "") or env_str("REDIS_URL", "")
if _CACHE_URL and not _CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    # The scheme only: the URL may carry a password.
    raise ImproperlyConfigured(
        f"SHELFWATCH_CACHE_URL (or REDIS_URL) {_CACHE_URL.split(':', 1)[0]}:... "
        "is not a redis:// URL (redis://, rediss://, unix://)"
    )
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_URL,
            "KEY_PREFIX": "shelfwatch",
        }
        if _CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Django REST framework -------------------------------------------------------------------
# Token authentication first: an unauthenticated call gets 401 with ``WWW-Authenticate: Token``
# (DRF asks the first class for the header). Tokens expire and die with a password change
# (common/api_auth.py); the session keeps the browsable API and Swagger UI working.
SHELFWATCH_TOKEN_TTL_HOURS = env_int("SHELFWATCH_TOKEN_TTL_HOURS", 720)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.api_auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["common.api_permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "common.filters.StrictFilterBackend",
        "common.filters.StrictOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "common.api_pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "common.api_schema.ShelfWatchAutoSchema",
    "EXCEPTION_HANDLER": "common.api_exceptions.api_exception_handler",
    # Throttle counters live in the default cache (shared Redis in production). "runs" guards
    # POST /detection-runs/ (each starts a detection), "reports" the report endpoints, "auth"
    # the token endpoint (per client address, on top of the django-axes lockout).
    "DEFAULT_THROTTLE_CLASSES": [
        "common.api_throttling.AnonRateThrottle",
        "common.api_throttling.UserRateThrottle",
        "common.api_throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("SHELFWATCH_THROTTLE_ANON", "120/min"),
        "user": env_str("SHELFWATCH_THROTTLE_USER", "3000/min"),
        "runs": env_str("SHELFWATCH_THROTTLE_RUNS", "30/hour"),
        "reports": env_str("SHELFWATCH_THROTTLE_REPORTS", "120/min"),
        "auth": env_str("SHELFWATCH_THROTTLE_AUTH", "20/min"),
    },
}

# The schema and Swagger UI are for signed-in users unless SHELFWATCH_API_DOCS_PUBLIC=true.
SHELFWATCH_API_DOCS_PUBLIC = env_bool("SHELFWATCH_API_DOCS_PUBLIC", False)
SPECTACULAR_SETTINGS = {
    "TITLE": "ShelfWatch API",
    "DESCRIPTION": "Inventory anomalies found in retail data, and their triage. Authenticate "
    "with `Authorization: Token <key>` (POST /api/v1/auth/token/ gives one) or a session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Who may read the schema and docs: common/api_docs.py (SHELFWATCH_API_DOCS_PUBLIC).
    # Request bodies get their own components (no read-only fields; required text has
    # minLength 1), and the schema documents JSON bodies only: form encodings still parse
    # (browsable API) but cannot say null or an empty list.
    "COMPONENT_SPLIT_REQUEST": True,
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # Swagger UI's assets come from drf-spectacular-sidecar: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets used under several field names (status / expected_status, reason /
    # dismiss_reason) get one schema name each.
    "ENUM_NAME_OVERRIDES": {
        "AnomalyStatusEnum": "anomalies.models.AnomalyStatus",
        "DismissReasonEnum": "anomalies.models.DismissReason",
        "RunStatusEnum": "anomalies.models.RunStatus",
    },
}

# --- Celery ----------------------------------------------------------------------------------
_BROKER_URL = env_str("CELERY_BROKER_URL", "")
# No broker configured: run tasks in-process so a fresh clone needs no Redis. The in-memory
# transport keeps anything that still opens a connection from reaching amqp://localhost.
CELERY_TASK_ALWAYS_EAGER = not _BROKER_URL
CELERY_BROKER_URL = _BROKER_URL or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
# Detection's fan-out is a chord (chunk tasks, then one finishing task): with a broker it needs
# a result backend; it defaults to the broker when that is Redis.
CELERY_RESULT_BACKEND = env_str(
    "CELERY_RESULT_BACKEND",
    _BROKER_URL if _BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 24 * 3600)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker process that dies mid-task (kill -9, out of memory) puts its task back in the queue
# instead of acknowledging it; chunk tasks are idempotent, so running one again is safe.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Time limits per task, in seconds: the soft one raises inside the task (the chunk is marked
# failed with the reason), the hard one kills the process. A chunk of 10 stores takes seconds;
# a run without a result backend executes all its chunks in one task, hence the margin.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = env_int(
    "CELERY_TASK_SOFT_TIME_LIMIT", max(1, CELERY_TASK_TIME_LIMIT - 60)
)
if not 0 < CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_TASK_SOFT_TIME_LIMIT must be positive and below CELERY_TASK_TIME_LIMIT"
    )
# Redis redelivers an unacknowledged task after the visibility timeout: longer than the hard
# time limit, so a task still running is never handed to a second worker. A run whose worker
# vanished does not wait for it: the reaper fails it within SHELFWATCH_RUN_LEASE_SECONDS plus a
# minute, and a late redelivery of its chunk then does nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 300),
    # Fail fast when the broker is down: a web request that enqueues a run must not hang.
    "socket_connect_timeout": env_float("CELERY_BROKER_CONNECT_TIMEOUT", 2.0),
    "socket_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 10.0),
    "max_retries": 1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECT_TIMEOUT", 2.0)
# Publishing retries at most once, at once: enqueueing with the broker down fails in a few
# seconds (the run is then recorded failed, "broker unreachable") instead of 40 s or more.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# Workers keep retrying the broker at start-up and after a loss (they are long-lived);
# publishing, above, does not.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Result backend (chords): same fast failure.
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = env_float("CELERY_BROKER_CONNECT_TIMEOUT", 2.0)
CELERY_REDIS_SOCKET_TIMEOUT = env_float("CELERY_BROKER_SOCKET_TIMEOUT", 10.0)

# --- Email (notifications) ------------------------------------------------------------------
# Default: print messages to the console, so a fresh clone never tries to reach an SMTP server.
# Production: EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend plus EMAIL_HOST etc.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ShelfWatch <shelfwatch@localhost>")

# --- Logging ---------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- ShelfWatch ------------------------------------------------------------------------------
# Currency symbol used in human-readable explanations.
SHELFWATCH_CURRENCY = env_str("SHELFWATCH_CURRENCY", "£")
# Triage: a snoozed anomaly reopens early when detection raises its severity or its value at
# risk grows by at least this many percent over the value it had when snoozed.
SHELFWATCH_SNOOZE_WORSEN_PCT = env_int("SHELFWATCH_SNOOZE_WORSEN_PCT", 50)
# Triage: a resolved anomaly that fires again within this many days after its last day is
# reopened (marked regressed) instead of a new anomaly being raised; 0 turns this off.
SHELFWATCH_REGRESSION_DAYS = env_int("SHELFWATCH_REGRESSION_DAYS", 14)
# Detection fans out per chunk of this many locations: one Celery task each (one after another
# in-process without a broker). 10 stores of 1,000 SKUs load and scan in about a second.
SHELFWATCH_DETECTION_CHUNK_LOCATIONS = env_int("SHELFWATCH_DETECTION_CHUNK_LOCATIONS", 10)
# Detection runs and chunks hold a lease their worker renews (anomalies.services.leases): one
# that sends no heartbeat for this many seconds is failed by the reaper (beat, every minute).
# It must exceed the longest step of a chunk between two heartbeats (load, one detector, persist).
SHELFWATCH_RUN_LEASE_SECONDS = env_int("SHELFWATCH_RUN_LEASE_SECONDS", 180)
# How long a requested run, or a fanned-out run's chunks, may wait in the queue for a worker.
SHELFWATCH_RUN_QUEUE_SECONDS = env_int("SHELFWATCH_RUN_QUEUE_SECONDS", 1800)
if SHELFWATCH_RUN_LEASE_SECONDS < 1 or SHELFWATCH_RUN_QUEUE_SECONDS < 1:
    raise ImproperlyConfigured("SHELFWATCH_RUN_LEASE_SECONDS and _QUEUE_SECONDS must be positive")
# Notifications: remind about anomalies still open this many hours after they were raised
# (a channel's own "unacknowledged after hours" overrides it).
SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS = env_int("SHELFWATCH_NOTIFY_UNACKNOWLEDGED_HOURS", 24)
# Where links in notifications point (the admin's scheme, host and port).
SHELFWATCH_BASE_URL = env_str("SHELFWATCH_BASE_URL", "http://127.0.0.1:8000")
# Outcomes loop (cycle counts, metrics, ROI, threshold proposals; see outcomes/).
# Share of stocked SKU/locations with no open finding drawn for random control counts.
SHELFWATCH_CONTROL_COUNT_SHARE = env_float("SHELFWATCH_CONTROL_COUNT_SHARE", 0.005)
# ROI: days after its start at which ghost stock would have been found without the detector.
SHELFWATCH_ROI_DISCOVERY_DAYS = env_int("SHELFWATCH_ROI_DISCOVERY_DAYS", 30)
# ROI: labour of one cycle count (minutes) and its cost per hour (currency units).
SHELFWATCH_COUNT_MINUTES = env_float("SHELFWATCH_COUNT_MINUTES", 10.0)
SHELFWATCH_COUNT_COST_PER_HOUR = env_float("SHELFWATCH_COUNT_COST_PER_HOUR", 15.0)
# Threshold proposals aim at this precision per detector.
SHELFWATCH_TARGET_PRECISION = env_float("SHELFWATCH_TARGET_PRECISION", 0.8)
# Dashboard: how long its aggregates are reused from the cache (seconds; 0 = always recompute).
SHELFWATCH_DASHBOARD_CACHE_SECONDS = env_int("SHELFWATCH_DASHBOARD_CACHE_SECONDS", 120)
# Health (/health/): unhealthy when enabled detection schedules exist but the latest successful
# run finished longer ago than this (hours; 0 = never check). A failed notification delivery in
# the last SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS is a warning (still 200).
SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS = env_float("SHELFWATCH_HEALTH_MAX_RUN_AGE_HOURS", 36.0)
SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS = env_float("SHELFWATCH_HEALTH_NOTIFY_FAILURE_HOURS", 24.0)
# Retention: resolved and dismissed anomalies closed longer ago than this (days) are deleted,
# with their activity log, outcome and notification log (anomalies/services/retention.py).
SHELFWATCH_RETENTION_DAYS = env_int("SHELFWATCH_RETENTION_DAYS", 400)
# Importers: dates outside SHELFWATCH_DATE_MIN .. today + SHELFWATCH_DATE_MAX_AHEAD_DAYS are
# refused as implausible (a 9999-12-31 typo would otherwise break every detection run).
try:
    SHELFWATCH_DATE_MIN = dt.date.fromisoformat(env_str("SHELFWATCH_DATE_MIN", "1990-01-01"))
except ValueError as exc:
    raise ImproperlyConfigured("SHELFWATCH_DATE_MIN is not a date (YYYY-MM-DD)") from exc
SHELFWATCH_DATE_MAX_AHEAD_DAYS = env_int("SHELFWATCH_DATE_MAX_AHEAD_DAYS", 366)
if SHELFWATCH_DATE_MAX_AHEAD_DAYS < 0:
    raise ImproperlyConfigured("SHELFWATCH_DATE_MAX_AHEAD_DAYS must not be negative")

# --- Login lockout (django-axes) -------------------------------------------------------------
# Failed logins to the admin and to POST /api/v1/auth/token/ are counted per username and
# client address in the database; at AXES_FAILURE_LIMIT failures that pair is locked out (429,
# even with the right password) until AXES_COOLOFF_TIME passes or `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SHELFWATCH_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = env_float("SHELFWATCH_LOGIN_COOLOFF_HOURS", 1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Behind a proxy, the client address comes from X-Forwarded-For only when the proxy count is
# set (AXES_IPWARE_PROXY_COUNT); otherwise REMOTE_ADDR.
AXES_IPWARE_PROXY_COUNT = env_int("SHELFWATCH_PROXY_COUNT", 0) or None
AXES_LOCKOUT_CALLABLE = "common.api_auth.lockout_response"
# Axes announces itself at INFO in every process; its lockout warnings still show.
LOGGING["loggers"]["axes.apps"] = {"level": "WARNING"}
