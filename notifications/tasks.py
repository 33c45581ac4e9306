"""Celery tasks for notifications: thin wrappers around the services.

The task name is a stable string: the beat schedule stored in the database refers to it.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from notifications.services import notifications_send


@shared_task(name="notifications.send")
def send_notifications_task() -> dict:
    """Send the pending digests now; returns the ``SendReport`` as a dict."""
    return notifications_send(now=timezone.now()).as_dict()
