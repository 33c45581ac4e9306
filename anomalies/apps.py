from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _detector_settings_ensure(sender: AppConfig, **kwargs: Any) -> None:
    """After ``migrate``: a settings row per registered detector (see
    ``anomalies.services.detector_settings``)."""
    from anomalies.services.detector_settings import detector_settings_ensure

    if kwargs.get("using", "default") != "default":
        return
    try:  # the migrated state's model: a migrate back to before the table has none
        model = kwargs["apps"].get_model("anomalies", "DetectorConfig")
    except (KeyError, LookupError):
        return
    detector_settings_ensure(model=model)


class AnomaliesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "anomalies"

    def ready(self) -> None:
        # Once per migrate, after this app's tables exist (sender=self); a new detector gets
        # its row at the next deploy's migrate.
        post_migrate.connect(_detector_settings_ensure, sender=self)
