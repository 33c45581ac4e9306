"""API tokens that expire and die with a password change, and the endpoint that issues them.

Tokens are ``rest_framework.authtoken`` tokens (one per user, ``Authorization: Token <key>``):

- a token older than ``SHELFWATCH_TOKEN_TTL_HOURS`` is refused (401) and replaced by the next
  ``POST /api/v1/auth/token/``;
- changing a user's password deletes their token (``tokens_revoke_on_password_change``,
  connected in ``CommonConfig.ready``), whichever way the password was changed (admin,
  ``changepassword``, ``set_password`` in code);
- the token endpoint (``common/api_token.py``) authenticates through
  ``django.contrib.auth.authenticate`` with the request, so django-axes counts its failures
  and locks it out like the admin login.

No import of ``rest_framework.views`` here: DRF's settings import this module.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

logger = logging.getLogger(__name__)

LOCKED_OUT_MESSAGE = "Too many failed logins: this account is locked for a while from here."


def token_ttl() -> timedelta:
    """How long a token stays valid after it was issued (``SHELFWATCH_TOKEN_TTL_HOURS``)."""
    return timedelta(hours=settings.SHELFWATCH_TOKEN_TTL_HOURS)


def token_expires_at(token: Token) -> datetime:
    """The moment ``token`` stops being accepted (aware datetime)."""
    return token.created + token_ttl()


class ExpiringTokenAuthentication(TokenAuthentication):
    """``TokenAuthentication`` that refuses tokens older than the TTL (and deletes them).

    Raises ``AuthenticationFailed`` (401 with ``WWW-Authenticate: Token``) for an unknown,
    expired or inactive user's token, like its parent does for unknown ones.
    """

    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)
        if timezone.now() >= token_expires_at(token):
            Token.objects.filter(pk=token.pk).delete()
            raise exceptions.AuthenticationFailed("Token has expired; request a new one.")
        return user, token


def tokens_revoke_on_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    """``pre_save`` receiver for the user model: a changed password hash deletes the token.

    Saves that name ``update_fields`` without ``password`` (the login's ``last_login``
    update) cost nothing; other saves of an existing user read the stored hash once.
    """
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = (
        type(instance)._default_manager.filter(pk=instance.pk).values_list("password", flat=True)
    )
    old_hash = next(iter(stored), None)
    if old_hash is not None and old_hash != instance.password:
        deleted, _ = Token.objects.filter(user_id=instance.pk).delete()
        if deleted:
            logger.info("Password of user %s changed: API token revoked", instance.pk)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes ``AXES_LOCKOUT_CALLABLE``: JSON ``{"detail": ...}`` for the API, text else.

    Status ``AXES_HTTP_RESPONSE_CODE`` (429); the message never says whether the password
    was right.
    """
    code = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKED_OUT_MESSAGE}, status=code)
    return HttpResponse(LOCKED_OUT_MESSAGE, status=code, content_type="text/plain")
