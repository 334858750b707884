"""REST endpoints for model versions and training runs."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from annotations.roles import IsStaff

from .. import services
from ..models import ModelVersion
from .serializers import ActivateSerializer, ModelVersionSerializer


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """All model versions with lineage and metrics; staff activate or roll back."""

    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.select_related("parent")
    filterset_fields = ["kind", "is_active"]

    @extend_schema(request=ActivateSerializer, responses=ModelVersionSerializer, summary="Make this version active")
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def activate(self, request, pk=None):
        data = ActivateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = self.get_object()
        services.activate_version(version=version, user=request.user, reason=data.validated_data.get("reason", ""))
        version.refresh_from_db()
        return Response(ModelVersionSerializer(version).data)
