"""One log line per refused request (4xx): method, path, status and user, never a traceback.

Django logs a 403/404 raised as ``PermissionDenied``/``Http404`` (and a ``SuspiciousOperation``)
with the exception's traceback; a refusal is expected behaviour, not a bug, so that is noise.
"""
from __future__ import annotations

import logging


class OneLineClientErrors(logging.Filter):
    """Rewrites ``django.request``/``django.security`` records of 4xx answers to one line; 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        if not isinstance(status, int) or not 400 <= status < 500 or request is None:
            return True
        user = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        record.msg = "%s %s %s user=%s"
        record.args = (request.method, request.path, status, username)
        record.exc_info = record.exc_text = record.stack_info = None
        return True
