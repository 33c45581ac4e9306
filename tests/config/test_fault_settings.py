"""Settings that keep faults short: database options, Celery limits and fast enqueue failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_database_options_make_concurrent_writes_wait_or_reconnect():
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert db["OPTIONS"]["timeout"] >= 5
        assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    else:
        assert db["CONN_HEALTH_CHECKS"] is True


def test_celery_gives_a_lost_task_back_and_never_to_two_workers_at_once():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    # A task still running is killed by its hard limit before Redis would redeliver it.
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit


def test_enqueueing_gives_up_after_one_quick_retry():
    conf = app.conf
    assert conf.task_publish_retry_policy["max_retries"] <= 1
    assert conf.broker_connection_timeout <= 5
    assert conf.broker_transport_options["socket_connect_timeout"] <= 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_TASK_TIME_LIMIT": "60", "CELERY_TASK_SOFT_TIME_LIMIT": "60"}, "SOFT_TIME_LIMIT"),
        ({"SHELFWATCH_RUN_LEASE_SECONDS": "0"}, "SHELFWATCH_RUN_LEASE_SECONDS"),
    ],
)
def test_inconsistent_limits_are_refused_at_start(env, message):
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr
