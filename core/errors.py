"""The API's error answers: DRF's exception handler plus a 413 for oversized request bodies.

Django refuses a body past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` when DRF reads it (``request.body``),
but as ``RequestDataTooBig``, a 400 with no message; an API client gets 413 and the limit instead.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler as drf_exception_handler


class RequestBodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestBodyTooLarge(f"The request body is larger than the limit of {limit} bytes; send less data.")
    return drf_exception_handler(exc, context)
