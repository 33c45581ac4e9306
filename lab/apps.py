from django.apps import AppConfig


class LabConfig(AppConfig):
    """Offline tooling (simulator, scoring, evaluation, benchmarks); no models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "lab"
    verbose_name = "Lab (offline tooling)"
