from __future__ import annotations

from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Installed so that its templates (the admin's bounded paginator) are found."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "common"
