"""Signing in: API tokens that expire and die with a password change, and one brute-force limit
(the ``login`` throttle scope) shared by ``POST /api/auth/token/`` and the login page (``core.views``)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.throttling import ScopedRateThrottle

LOGIN_SCOPE = "login"


def token_expired(token: Token) -> bool:
    return token.created < timezone.now() - timedelta(days=settings.API_TOKEN_TTL_DAYS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """``Authorization: Token …``, refused once the token is ``API_TOKEN_TTL_DAYS`` old."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed("Token expired; request a new one.")
        return user, token


class RevokeTokensOnPasswordChange:
    """Deletes the user's API tokens whenever their password changes.

    Listed in ``AUTH_PASSWORD_VALIDATORS`` only for its ``password_changed`` hook, which Django calls
    from ``User.save()`` after every ``set_password`` — the change-password page, a reset, the admin
    and ``manage.py changepassword`` alike — so no path can forget it. It validates nothing.
    """

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            Token.objects.filter(user=user).delete()

    def get_help_text(self) -> str:
        return ""


class LoginThrottle(ScopedRateThrottle):
    """Attempts per client IP in the ``login`` scope (rate ``LOGIN_THROTTLE_RATE``)."""

    def get_rate(self):
        return settings.LOGIN_THROTTLE_RATE or None

    def get_cache_key(self, request, view):
        # Always by address: an attacker is anonymous, and a signed-in user must not get a fresh budget.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _LoginScope:
    throttle_scope = LOGIN_SCOPE


def login_wait_seconds(request) -> int | None:
    """Count one sign-in attempt from ``request``'s address; seconds to wait if over the limit, else None."""
    throttle = LoginThrottle()
    if throttle.allow_request(request, _LoginScope()):
        return None
    return max(1, int(throttle.wait() or 1))


def too_many_attempts(wait: int) -> str:
    return f"Too many sign-in attempts from your address; try again in {wait} seconds."
