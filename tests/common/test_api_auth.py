"""Token authentication: 401 with WWW-Authenticate, expiry, revocation, the token endpoint and
the django-axes lockout of the token endpoint and the admin login."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.roles import VIEWER
from tests.conftest import grant_role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
PRODUCTS = "/api/v1/products/"
LOGIN_URL = "/admin/login/"


def _viewer(**kwargs):
    """A user who may read the API (the viewer role, every store): what a token can reach is
    then decided by authentication alone."""
    user = UserFactory(**kwargs)
    grant_role(user, VIEWER, all_locations=True)
    return user


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _obtain(username: str, password: str):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def test_anonymous_call_gets_401_with_token_challenge():
    response = APIClient().get(PRODUCTS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_token_endpoint_issues_a_token_that_authenticates():
    user = _viewer(username="clerk")

    response = _obtain("clerk", "pw")

    assert response.status_code == 200
    body = response.json()
    assert body["token"] == Token.objects.get(user=user).key
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=719) < expires - timezone.now() <= dt.timedelta(hours=720)
    assert _token_client(body["token"]).get(PRODUCTS).status_code == 200


def test_token_endpoint_returns_the_same_token_until_it_expires():
    _viewer(username="clerk")

    first = _obtain("clerk", "pw").json()["token"]
    second = _obtain("clerk", "pw").json()["token"]

    assert first == second


def test_wrong_password_gets_400_and_no_token():
    _viewer(username="clerk")

    response = _obtain("clerk", "wrong")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with these credentials."]}
    assert not Token.objects.exists()


def test_inactive_user_gets_no_token():
    user = _viewer(username="gone")
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert _obtain("gone", "pw").status_code == 400


def test_expired_token_is_refused_and_deleted_then_replaced(settings):
    settings.SHELFWATCH_TOKEN_TTL_HOURS = 24
    user = _viewer(username="clerk")
    token = Token.objects.create(user=user)
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - dt.timedelta(hours=25))

    response = _token_client(token.key).get(PRODUCTS)

    assert response.status_code == 401
    assert response.json() == {"detail": "Token has expired; request a new one."}
    assert not Token.objects.filter(key=token.key).exists()
    fresh = _obtain("clerk", "pw").json()["token"]
    assert fresh != token.key
    assert _token_client(fresh).get(PRODUCTS).status_code == 200


def test_token_within_its_ttl_is_accepted(settings):
    settings.SHELFWATCH_TOKEN_TTL_HOURS = 24
    token = Token.objects.create(user=_viewer())
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - dt.timedelta(hours=23))

    assert _token_client(token.key).get(PRODUCTS).status_code == 200


def test_password_change_revokes_the_token():
    user = _viewer(username="clerk")
    key = _obtain("clerk", "pw").json()["token"]

    user.set_password("a new long passphrase")
    user.save()

    assert not Token.objects.filter(user=user).exists()
    assert _token_client(key).get(PRODUCTS).status_code == 401


def test_saves_that_keep_the_password_keep_the_token():
    user = _viewer(username="clerk")
    key = _obtain("clerk", "pw").json()["token"]

    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    user.first_name = "Sam"
    user.save()

    assert _token_client(key).get(PRODUCTS).status_code == 200


def test_delete_revokes_your_token():
    _viewer(username="clerk")
    key = _obtain("clerk", "pw").json()["token"]
    client = _token_client(key)

    assert client.delete(TOKEN_URL).status_code == 204
    assert client.get(PRODUCTS).status_code == 401


def test_delete_needs_authentication():
    assert APIClient().delete(TOKEN_URL).status_code == 401


def test_token_endpoint_is_throttled_per_client(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "3/min",
        },
    }
    _viewer(username="clerk")

    codes = [_obtain("clerk", "pw").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]


# --- lockout (django-axes) ---------------------------------------------------------------------


def test_ten_wrong_passwords_lock_the_token_endpoint_even_for_the_right_one(settings):
    settings.AXES_FAILURE_LIMIT = 10
    _viewer(username="clerk")

    wrong = [_obtain("clerk", f"guess{i}").status_code for i in range(10)]
    right = _obtain("clerk", "pw")

    assert wrong[:9] == [400] * 9
    assert wrong[9] == 429  # the tenth failure locks out
    assert right.status_code == 429
    assert "token" not in right.json()
    assert right.json()["detail"].startswith("Too many failed logins")
    assert not Token.objects.exists()


def test_lockout_ends_after_the_cooloff(settings):
    settings.AXES_FAILURE_LIMIT = 10
    _viewer(username="clerk")
    for i in range(10):
        _obtain("clerk", f"guess{i}")
    assert _obtain("clerk", "pw").status_code == 429

    past_cooloff = timezone.now() - dt.timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    AccessAttempt.objects.update(attempt_time=past_cooloff)

    assert _obtain("clerk", "pw").status_code == 200


def test_lockout_is_per_username_and_address(settings):
    settings.AXES_FAILURE_LIMIT = 10
    _viewer(username="clerk")
    _viewer(username="other")
    for i in range(10):
        _obtain("clerk", f"guess{i}")

    assert _obtain("other", "pw").status_code == 200


def test_ten_wrong_admin_logins_lock_out_the_right_password_until_reset(client, settings):
    from axes.utils import reset

    settings.AXES_FAILURE_LIMIT = 10
    UserFactory(username="ops", is_superuser=True)

    for i in range(10):
        client.post(LOGIN_URL, {"username": "ops", "password": f"guess{i}"})
    locked = client.post(LOGIN_URL, {"username": "ops", "password": "pw"})

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert reset(username="ops") == 1
    ok = client.post(LOGIN_URL, {"username": "ops", "password": "pw", "next": "/admin/"})
    assert ok.status_code == 302
    assert client.session["_auth_user_id"]
