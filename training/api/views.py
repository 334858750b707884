"""REST endpoints for model versions and training runs."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.actions import ActionRefused, Refused, run_action
from core.roles import IsStaff
from core.schema import ErrorSerializer

from .. import services
from ..models import ModelVersion, TrainingRun
from .serializers import FirstSFTOfferSerializer, StartRunSerializer, TrainingRunSerializer


class TrainingRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Training runs (staff): start, watch progress, cancel."""

    permission_classes = [IsStaff]
    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related("parent", "result_version", "created_by")
    filterset_fields = ["kind", "status"]

    def list(self, request, *args, **kwargs):
        services.reap_dead_runs()
        return super().list(request, *args, **kwargs)

    @extend_schema(request=StartRunSerializer, responses={201: TrainingRunSerializer}, summary="Start an SFT or DPO run")
    def create(self, request):
        data = StartRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        parent = v.get("parent") or ModelVersion.objects.active()
        if parent is None:
            raise Refused(ActionRefused("No parent version given and none is active.", 400))
        filters = {k: val for k, val in v.get("filters", {}).items() if val not in ("", None)}
        run = run_action(
            services.start_training_run,
            kind=v["kind"], parent=parent, user=request.user, filters=filters, hyperparameters=v.get("hyperparameters", {}),
        )
        return Response(TrainingRunSerializer(run).data, status=201)

    @extend_schema(request=None, responses=TrainingRunSerializer, summary="Cancel a queued or running run")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = run_action(services.cancel_training_run, run=self.get_object(), user=request.user)
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(
        methods=["GET"], request=None, responses=FirstSFTOfferSerializer,
        summary="Whether the first SFT (from the base model, on the imported references) is offered now",
    )
    @extend_schema(
        methods=["POST"], request=None, responses={201: TrainingRunSerializer, 409: ErrorSerializer},
        summary="Train the first model: SFT from the base on the imported references, activated if it beats the base",
    )
    @action(detail=False, methods=["get", "post"])
    def first(self, request):
        if request.method == "GET":
            reason = services.first_sft_refusal()
            return Response({"offered": reason is None, "reason": reason})
        run = run_action(services.start_first_sft, user=request.user)
        return Response(TrainingRunSerializer(run).data, status=201)
