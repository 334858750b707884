"""Sign-in views: the token endpoint and the login page, both under the ``login`` attempt limit."""
from __future__ import annotations

from django.contrib.auth.views import LoginView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .auth import LOGIN_SCOPE, LoginThrottle, login_wait_seconds, token_expired, too_many_attempts


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class ObtainExpiringAuthToken(ObtainAuthToken):
    """``POST /api/auth/token/``: username and password → a token; an expired token is replaced."""

    throttle_classes = [LoginThrottle]
    throttle_scope = LOGIN_SCOPE
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    def throttled(self, request, wait):
        wait = max(1, int(wait or 1))
        raise exceptions.Throttled(wait, detail=too_many_attempts(wait))

    @extend_schema(
        request=ObtainAuthToken.serializer_class,
        responses={200: TokenResponseSerializer, 400: OpenApiResponse(description="Wrong username or password.")},
        summary="Get an API token (expires after API_TOKEN_TTL_DAYS; a password change revokes it)",
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        if token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key})


class ThrottledLoginView(LoginView):
    """The login page, with the same per-address attempt limit as the token endpoint (429 past it)."""

    def post(self, request, *args, **kwargs):
        wait = login_wait_seconds(request)
        if wait is not None:  # an unbound form: the password is not even checked
            context = self.get_context_data(form=self.form_class(request), throttled=too_many_attempts(wait))
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)
