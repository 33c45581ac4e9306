from __future__ import annotations

from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared infrastructure with no models: bulk writes, admin helpers, filter helpers."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "common"
