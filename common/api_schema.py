"""The OpenAPI schema class: every operation documents the error answers it can give.

drf-spectacular documents only the success codes; a client (or schemathesis) then meets
undocumented 400/401/403/404/429 answers. ``ShelfWatchAutoSchema`` adds them with their real
bodies: 400 is DRF's validation error object (``{"field": ["message"]}`` or
``{"detail": "..."}``), the others ``{"detail": "..."}``.

Decimal fields are strings in responses (``"261.82"``); in requests DRF takes a JSON number
too, and ``DecimalRequestExtension`` says so.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": 'Messages by field (`{"limit": ["..."]}`), or `{"detail": "..."}`.',
    "additionalProperties": {},
}


class ErrorDetailSerializer(serializers.Serializer):
    """``{"detail": "Authentication credentials were not provided."}`` and the like."""

    detail = serializers.CharField()


class ShelfWatchAutoSchema(AutoSchema):
    """``AutoSchema`` that adds 400, 401, 403, 404 and 429 to each operation's responses.

    401/403 only where the operation needs authentication, 404 only on paths with a
    parameter. A 400 declared by a view keeps its description but gets the validation-error
    body, which is what DRF sends.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses

        def detail(code: str, description: str) -> dict:
            body = self._get_response_for_code(ErrorDetailSerializer, code, direction=direction)
            body["description"] = responses.get(code, {}).get("description") or description
            return body

        described_400 = responses.get("400", {}).get("description")
        responses["400"] = {
            "description": described_400 or "Invalid parameters or body.",
            "content": {"application/json": {"schema": VALIDATION_ERROR_SCHEMA}},
        }
        if self.get_auth():
            responses.setdefault("401", detail("401", "Not authenticated (or token expired)."))
            responses.setdefault("403", detail("403", "Not allowed."))
        if "{" in self.path:
            responses.setdefault("404", detail("404", "Not found."))
        responses.setdefault("429", detail("429", "Throttled; retry after `Retry-After` s."))
        return responses


class DecimalRequestExtension(OpenApiSerializerFieldExtension):
    """A ``DecimalField`` in a request body: its decimal string, or a JSON number."""

    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return schema
        return {"oneOf": [schema, {"type": "number"}]}
