"""REST endpoints for evaluations: list, queue (staff), and side-by-side outputs of two versions."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.actions import run_action
from core.roles import IsReviewer, IsStaff
from training.models import ModelVersion

from . import services
from .models import Evaluation


class EvaluationSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="version.name")

    class Meta:
        model = Evaluation
        fields = ["id", "version", "status", "sample_size", "seed", "metrics", "meta", "config", "error", "created_at", "finished_at"]


class QueueEvaluationSerializer(serializers.Serializer):
    version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    sample_size = serializers.IntegerField(required=False, min_value=1)
    seed = serializers.IntegerField(required=False)


class EvaluationViewSet(viewsets.ReadOnlyModelViewSet):
    """Automatic evaluations (STA, SIM, FL, chrF, J) of model versions on held-out prompts."""

    permission_classes = [IsReviewer]
    serializer_class = EvaluationSerializer
    queryset = Evaluation.objects.select_related("version")
    filterset_fields = ["status", "version"]

    def get_permissions(self):
        return [IsStaff()] if self.action == "create" else super().get_permissions()

    @extend_schema(request=QueueEvaluationSerializer, responses={201: EvaluationSerializer})
    def create(self, request):
        data = QueueEvaluationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        evaluation = run_action(
            services.queue_evaluation, version=v["version"], user=request.user, sample_size=v.get("sample_size"), seed=v.get("seed")
        )
        return Response(EvaluationSerializer(evaluation).data, status=201)

    @extend_schema(
        parameters=[OpenApiParameter("a", int, required=True), OpenApiParameter("b", int, required=True)],
        responses={200: dict},
        summary="Outputs of two versions on the same held-out sentences, and b - a with paired bootstrap intervals",
    )
    @action(detail=False, methods=["get"])
    def compare(self, request):
        try:
            a = ModelVersion.objects.get(pk=int(request.query_params.get("a", "")))
            b = ModelVersion.objects.get(pk=int(request.query_params.get("b", "")))
        except (ValueError, ModelVersion.DoesNotExist):
            return Response({"detail": "Give two existing version ids as ?a=..&b=.."}, status=400)
        rows = services.side_by_side(a, b)
        return Response(
            {
                "a": a.name,
                "b": b.name,
                "b_minus_a": services.compare_versions(b, a),
                "rows": [
                    {"prompt": r["prompt"], "references": r["references"], "a": r["a"].output, "b": r["b"].output,
                     "a_j": r["a"].j, "b_j": r["b"].j}
                    for r in rows
                ],
            }
        )
