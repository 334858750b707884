"""REST endpoints for evaluations: list, queue (staff), and side-by-side outputs of two versions."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.actions import run_action
from core.roles import IsReviewer, IsStaff
from core.schema import ErrorSerializer
from training import services as training_services
from training.api.serializers import ActivateSerializer, ModelVersionSerializer
from training.models import ModelVersion

from . import judges, services
from .models import Evaluation, JudgeTraining


class EvaluationSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="version.name")

    class Meta:
        model = Evaluation
        fields = ["id", "version", "status", "sample_size", "seed", "metrics", "meta", "config", "error", "created_at", "finished_at"]


class ScoredVersionSerializer(ModelVersionSerializer):
    """A model version with how it compares with the active one (what the versions page shows)."""

    versus_active = serializers.SerializerMethodField(
        help_text="Paired bootstrap ΔJ/ΔSTA/ΔSIM/ΔFL against the active version on the same held-out prompts: "
        "{baseline, n, confidence, deltas: {j: {delta, low, high}, ...}} or {baseline, missing}; null for the active one."
    )

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "versus_active"]

    def get_versus_active(self, version: ModelVersion) -> dict | None:
        if "active" not in self.context:
            self.context["active"] = ModelVersion.objects.active()
        active = self.context["active"]
        if active is None or active.pk == version.pk:
            return None
        return services.compare_versions(version, active)


class JudgeTrainingSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True)

    class Meta:
        model = JudgeTraining
        fields = ["id", "status", "requested_by", "result", "error", "created_at", "started_at", "finished_at"]


class ToxicityJudgeSerializer(serializers.Serializer):
    in_use = serializers.CharField(help_text="EVAL_TOXICITY_CLASSIFIER: profanity-check, trained, or a model path.")
    trained = serializers.JSONField(
        allow_null=True,
        help_text="judge.json of the trained judge (accuracy per judge on the held-out texts with a Wilson interval, "
        "data counts, training hash) or null when none is trained.",
    )
    latest_training = JudgeTrainingSerializer(allow_null=True, help_text="The latest judge training job, or null.")


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
        staff_only = self.action == "create" or (self.action == "judge" and self.request.method == "POST")
        return [IsStaff()] if staff_only else super().get_permissions()

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
        methods=["GET"], responses=ToxicityJudgeSerializer,
        summary="Which judge scores STA, and the trained judge's held-out accuracy next to profanity-check's",
    )
    @extend_schema(
        methods=["POST"], request=None, responses={201: JudgeTrainingSerializer, 409: ErrorSerializer},
        summary="Train the toxicity judge on the imported data (staff; a job on the evaluation queue)",
    )
    @action(detail=False, methods=["get", "post"])
    def judge(self, request):
        from django.conf import settings

        if request.method == "POST":
            training = run_action(judges.queue_judge_training, user=request.user)
            return Response(JudgeTrainingSerializer(training).data, status=201)
        latest = JudgeTraining.objects.first()
        return Response(
            {
                "in_use": settings.EVAL_TOXICITY_CLASSIFIER,
                "trained": judges.trained_judge(),
                "latest_training": JudgeTrainingSerializer(latest).data if latest else None,
            }
        )

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


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """All model versions with lineage and metrics (staff only, like the versions page); staff activate or roll back."""

    permission_classes = [IsStaff]
    serializer_class = ScoredVersionSerializer
    queryset = ModelVersion.objects.select_related("parent")
    filterset_fields = ["kind", "is_active"]

    @extend_schema(request=ActivateSerializer, responses=ScoredVersionSerializer, summary="Make this version active")
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        data = ActivateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = self.get_object()
        activation = run_action(
            training_services.activate_version,
            version=version,
            user=request.user,
            reason=data.validated_data.get("reason", ""),
            override=data.validated_data["override"],
        )
        version.refresh_from_db()
        return Response({**ScoredVersionSerializer(version).data, "promotion_warning": activation.warning})

    @extend_schema(request=None, responses={201: EvaluationSerializer}, summary="Queue an evaluation of this version on the held-out split")
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def evaluate(self, request, pk=None):
        evaluation = run_action(services.queue_evaluation, version=self.get_object(), user=request.user)
        return Response(EvaluationSerializer(evaluation).data, status=201)
