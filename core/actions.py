"""Refusals of user actions, and the one adapter that turns them into API errors.

A service raises ``ActionRefused`` with the exact message and HTTP status a user sees; nothing is
written when it is raised. Views, the API and commands all catch the same exception.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rest_framework.exceptions import APIException

from .queues import RedisUnavailable

T = TypeVar("T")


class ActionRefused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Refused(APIException):
    """An ``ActionRefused`` as a DRF error: its status code and ``{"detail": message}``."""

    def __init__(self, exc: ActionRefused) -> None:
        super().__init__(detail=exc.message)
        self.status_code = exc.status


def run_action(func: Callable[..., T], **kwargs: Any) -> T:
    """Call a service, turning ``ActionRefused`` into a 4xx and a Redis outage into a 503, with their messages."""
    try:
        return func(**kwargs)
    except ActionRefused as exc:
        raise Refused(exc) from exc
    except RedisUnavailable as exc:
        raise Refused(ActionRefused(str(exc), 503)) from exc
