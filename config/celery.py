"""The Celery application. Settings come from Django settings with the ``CELERY_`` prefix.

With no ``CELERY_BROKER_URL`` the tasks run eagerly in-process (see ``config/settings.py``).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shelfwatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
