"""A bounded schemathesis run over the whole API, in-process (WSGI), so CI catches a server
error or a response that breaks the schema. ``make schemathesis`` runs the longer one against
a live server.

The schema is generated from the code (no request, no database); every case is sent with an
admin's token to a small database of factory rows. Checks: all of schemathesis's except
``positive_data_acceptance`` (a schema-valid id of a row that does not exist is rightly a
400, e.g. ``{"anomaly": 0}``). ``DELETE /auth/token/`` is left out: it revokes the token the
run uses.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS

from config.wsgi import application
from tests.factories import AnomalyFactory, DetectionRunFactory, UserFactory

MAX_EXAMPLES = 3

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application
schema = schema.exclude(method="DELETE", path="/api/v1/auth/token/")

EXCLUDED_CHECKS = [CHECKS.get_by_names(["positive_data_acceptance"])[0]]


@pytest.fixture
def _connection_kept():
    """Calling the WSGI app directly fires ``request_finished``, which closes the database
    connection, and with it the test's transaction on PostgreSQL; Django's test client
    unhooks the same handler for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, _connection_kept) -> str:
    user = UserFactory(username="fuzz", is_superuser=True)
    run = DetectionRunFactory(status="failed", error="Traceback ...\nValueError: boom")
    for _ in range(2):
        AnomalyFactory(last_run=run)
    return Token.objects.create(user=user).key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_schema(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"}, excluded_checks=EXCLUDED_CHECKS
    )
