"""Pagination whose parameters are validated and whose page size is capped.

DRF's ``LimitOffsetPagination`` silently ignores a bad ``limit``/``offset`` and, with no
``max_limit``, passes ``?limit=2**63`` to the database (HTTP 500 on both SQLite and
PostgreSQL). Here a non-integer, negative, zero (``limit``) or too large value is a 400
``{"limit": [...]}`` / ``{"offset": [...]}``, and the schema states the bounds. Cursor
pagination (the big tables) keeps its cursors; only its ``limit`` is validated the same way.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT_ROWS = 1000
# Far past any table we hold; keeps OFFSET a 64-bit integer on every database.
MAX_OFFSET_ROWS = 10**12


def _bounded_int(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["A valid integer is required."]}) from None
    if value < minimum:
        raise ValidationError({name: [f"Ensure this value is greater than or equal to {minimum}."]})
    if value > maximum:
        raise ValidationError({name: [f"Ensure this value is less than or equal to {maximum}."]})
    return value


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=`` 1..``MAX_LIMIT_ROWS`` (default ``PAGE_SIZE``), ``?offset=`` 0..10^12.

    Raises DRF ``ValidationError`` (400) naming the parameter for anything else.
    """

    max_limit = MAX_LIMIT_ROWS
    max_offset = MAX_OFFSET_ROWS

    def get_limit(self, request: Request) -> int | None:
        limit = _bounded_int(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        offset = _bounded_int(request, self.offset_query_param, minimum=0, maximum=self.max_offset)
        return 0 if offset is None else offset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": self.max_offset},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


class CappedCursorPagination(CursorPagination):
    """``CursorPagination`` whose ``?limit=`` (``page_size_query_param``) must be an integer
    1..``max_page_size``: anything else is a 400, not silently the default page size."""

    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT_ROWS

    def get_page_size(self, request: Request) -> int:
        size = _bounded_int(
            request, self.page_size_query_param, minimum=1, maximum=self.max_page_size
        )
        return self.page_size if size is None else size

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters
