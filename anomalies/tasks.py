"""Celery tasks: thin wrappers that load by id / arguments and call the detection service."""

from __future__ import annotations

from celery import shared_task
