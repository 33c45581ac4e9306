from __future__ import annotations

from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared infrastructure with no models: bulk writes, admin helpers, filter helpers."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "common"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from common.api_auth import tokens_revoke_on_password_change

        # A security invariant that must hold however the password changes (admin form,
        # changepassword, set_password in code): the old API token dies with the old password.
        pre_save.connect(
            tokens_revoke_on_password_change,
            sender=get_user_model(),
            dispatch_uid="common.tokens_revoke_on_password_change",
        )
