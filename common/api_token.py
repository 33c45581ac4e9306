"""``/api/v1/auth/token/``: exchange a username and password for an API token, or revoke it.

Expiry, revocation on password change and the lockout message live in ``common/api_auth.py``.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api_auth import LOCKED_OUT_MESSAGE, token_expires_at
from common.api_fields import StrictCharField

USERNAME_MAX_CHARS = get_user_model()._meta.get_field("username").max_length
PASSWORD_MAX_CHARS = 4096


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=USERNAME_MAX_CHARS)
    password = StrictCharField(
        max_length=PASSWORD_MAX_CHARS, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expires_at = serializers.DateTimeField()


class ObtainTokenView(APIView):
    """``POST`` username and password for a token; ``DELETE`` (authenticated) revokes yours.

    The same token is returned until it expires; an expired one is replaced. Throttled per
    client (scope ``auth``) and locked out by django-axes after repeated failures.
    """

    throttle_scope = "auth"

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    def get_authenticators(self):
        # Called before dispatch with ``self.request`` the Django request: a POST needs no
        # credentials and must not trip over an expired token or a session's CSRF check.
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        params = TokenRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        # The Django request, so django-axes can count the failure and flag a lockout.
        user = authenticate(
            request=request._request,
            username=params.validated_data["username"],
            password=params.validated_data["password"],
        )
        if user is None:
            if getattr(request._request, "axes_locked_out", False):
                raise exceptions.Throttled(detail=LOCKED_OUT_MESSAGE)
            raise exceptions.ValidationError(
                {"non_field_errors": ["Unable to log in with these credentials."]}
            )
        with transaction.atomic():
            token, _created = Token.objects.select_for_update().get_or_create(user=user)
            if timezone.now() >= token_expires_at(token):
                token.delete()
                token = Token.objects.create(user=user)
        return Response({"token": token.key, "expires_at": token_expires_at(token)})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
