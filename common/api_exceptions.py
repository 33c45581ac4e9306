"""The API's exception handler: JSON bodies for every failure, never a traceback.

DRF's own handler answers API exceptions (400, 401, 403, 404, 409, 429 ...). What it leaves
unhandled would become Django's HTML 500 page (with the traceback when ``DEBUG`` is on):

- ``OperationalError`` / ``InterfaceError`` (database down, connection lost, locked): 503
  ``{"detail": "Database unavailable"}`` with ``Retry-After``;
- anything else: 500 ``{"detail": "Internal server error"}``.

Both are logged with their traceback (logger ``shelfwatch.api``) for the operators.
``api_not_found`` answers a URL under ``/api/`` that matches no route with a JSON 404 (Django's
would be an HTML page, with the URL list when ``DEBUG`` is on).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger("shelfwatch.api")

DATABASE_UNAVAILABLE = "Database unavailable"
INTERNAL_ERROR = "Internal server error"
RETRY_AFTER_SECONDS = 30


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: DRF's answer, else a JSON 503 or 500.

    ``context`` is DRF's (``view``, ``request`` ...). Always returns a response: nothing
    propagates to Django's HTML error page.
    """
    response = exception_handler(exc, context)
    if response is not None:
        return response
    set_rollback()
    request = context.get("request")
    where = f"{request.method} {request.get_full_path()}" if request is not None else "?"
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("Database unavailable during %s", where, exc_info=exc)
        return Response(
            {"detail": DATABASE_UNAVAILABLE},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    logger.error("Unhandled error during %s", where, exc_info=exc)
    return Response({"detail": INTERNAL_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


@csrf_exempt  # a DELETE to a wrong URL is a 404, not a CSRF failure page
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The last ``/api/`` route: 404 ``{"detail": "Not found."}`` for any unmatched API URL."""
    return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
