"""The OpenAPI schema class: drf-spectacular's, plus the error answers every view can give.

A view documents its success responses; the 400/401/403/404/413/429 answers follow from what it is
(a write, a detail route, a protected or throttled view), so they are added here once, in the
``{"detail": message}`` shape DRF and ``core.actions.run_action`` produce. A view's own
``extend_schema(responses={...})`` for a code wins.
"""
from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

WRITES = ("POST", "PUT", "PATCH")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was refused and why.")


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        view, errors = self.view, {}
        filtered = getattr(view, "filterset_class", None) or getattr(view, "filterset_fields", None)
        if self.method in WRITES or (self.method == "GET" and filtered):
            errors["400"] = OpenApiResponse(
                OpenApiTypes.OBJECT, "Invalid input: `{field: [messages]}` or `{\"detail\": message}`."
            )
        if self._requires_permission():
            errors["401"] = OpenApiResponse(ErrorSerializer, "Not signed in, or the token is invalid or expired.")
            errors["403"] = OpenApiResponse(ErrorSerializer, "Signed in, but your role may not do this.")
        if "{" in self.path:
            errors["404"] = OpenApiResponse(ErrorSerializer, "No such object (or not visible to you).")
        if self.method in WRITES:
            errors["413"] = OpenApiResponse(ErrorSerializer, "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.")
        if view.get_throttles():
            errors["429"] = OpenApiResponse(ErrorSerializer, "Too many requests; the message says when to retry.")
        return errors

    def _requires_permission(self) -> bool:
        try:
            permissions = self.view.get_permissions()
        except Exception:  # a get_permissions() that needs a real request: assume it guards something
            return True
        return bool(permissions) and not all(isinstance(p, AllowAny) for p in permissions)
