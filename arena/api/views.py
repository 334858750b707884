"""REST endpoints for the arena; each action calls the same service as the web pages.

Staff open and close comparisons, reviewers and staff read them and their results, every
signed-in user judges matches.
"""
from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.views import judge
from annotations.models import AnnotationItem, Judgement
from core.actions import run_action
from core.roles import IsReviewer, IsStaff
from core.schema import ErrorSerializer

from .. import services
from ..models import Comparison
from ..results import ELO_CENTRE
from . import serializers as s

METHOD = (
    "Bradley–Terry strengths fitted by MM (ties count half a win each way, one virtual tie per pair as prior), "
    f"on the Elo scale with mean {ELO_CENTRE:.0f}; intervals from the Laplace approximation of the posterior."
)


class ComparisonViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Arena comparisons: reviewers and staff list them and read results; staff open and close them."""

    serializer_class = s.ComparisonSerializer
    queryset = Comparison.objects.with_counts().select_related("created_by").prefetch_related("versions")
    filterset_fields = ["is_open", "status"]

    def get_permissions(self):
        return [IsStaff()] if self.action in ("create", "close") else [IsReviewer()]

    @extend_schema(
        request=s.OpenComparisonSerializer, responses={201: s.ComparisonSerializer}, summary="Open a comparison"
    )
    def create(self, request):
        data = s.OpenComparisonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comparison = run_action(services.open_comparison, user=request.user, **data.validated_data)
        return Response(
            s.ComparisonSerializer(self.get_queryset().get(pk=comparison.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses=s.ComparisonSerializer, summary="Close a comparison (stop serving its matches)")
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        run_action(services.close_comparison, comparison=self.get_object(), user=request.user)
        return Response(s.ComparisonSerializer(self.get_object()).data)

    @extend_schema(responses=s.ResultsSerializer, summary="Win rates and ratings with confidence intervals")
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        comparison = self.get_object()
        run_action(services.check_results_visible, user=request.user, comparison=comparison)
        return Response(s.ResultsSerializer(results_payload(comparison)).data)


def results_payload(comparison: Comparison) -> dict:
    """What the results page and endpoint show; ``comparison`` comes from ``with_counts()``."""
    results = services.comparison_results(comparison=comparison)
    ids = {v.name: v.pk for v in comparison.versions.all()}
    return {
        "comparison": comparison,
        "standings": [{**asdict(standing), "version_id": ids.get(standing.version)} for standing in results.standings],
        "win_rates": results.win_rates,
        "pair_judgements": results.pair_judgements,
        "judgements": results.judgements,
        "ties": results.ties,
        "skips": comparison.skip_count,
        "confidence": results.confidence,
        "method": METHOD,
    }


def next_match_payload(user, comparison: Comparison | None = None, wait_seconds: int = 0) -> dict:
    """What the arena page and ``/api/arena/next/`` show: a match or why there is none (after waiting
    up to ``wait_seconds`` for one while matches are being generated)."""
    assignment = run_action(services.wait_for_match, user=user, comparison=comparison, wait_seconds=wait_seconds)
    judged = Judgement.objects.filter(user=user, item__kind=AnnotationItem.Kind.ARENA).saved_choices().count()
    if assignment is not None:
        state, message = "ready", "Which rewrite is better? Same meaning, polite, fluent."
    elif services.is_generating(comparison):
        state, message = "generating", "The models are writing this comparison's matches; they appear here in a moment."
    elif not Comparison.objects.filter(is_open=True).exists() or (comparison is not None and not comparison.is_open):
        state, message = "exhausted", "No arena comparison is open right now."
    else:
        state, message = "exhausted", "You have judged every available arena match. Thank you!"
    return {"status": state, "message": message, "assignment": assignment, "judged": judged}


class NextMatchView(APIView):
    @extend_schema(
        parameters=[s.NextMatchQuerySerializer],
        responses={
            200: s.NextMatchSerializer,
            400: OpenApiResponse(description="comparison is not an id, or wait is out of range: {field: [message]}"),
            404: OpenApiResponse(ErrorSerializer, "No such comparison."),
        },
        summary="Get the next blind A/B match (or why none is ready), optionally waiting for one",
    )
    def get(self, request):
        query = s.NextMatchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        comparison_id = query.validated_data.get("comparison")
        comparison = get_object_or_404(Comparison, pk=comparison_id) if comparison_id is not None else None
        payload = next_match_payload(request.user, comparison, query.validated_data["wait"])
        return Response(s.NextMatchSerializer(payload).data)


class ArenaJudgementView(APIView):
    @extend_schema(
        request=s.ArenaJudgementSubmitSerializer,
        responses={201: s.ArenaJudgementSerializer, 200: OpenApiResponse(s.ArenaJudgementSerializer, "Already submitted")},
        summary="Judge a match: the better side's candidate id, tie, or a skip reason",
    )
    def post(self, request):
        return judge(request, s.ArenaJudgementSubmitSerializer, s.ArenaJudgementSerializer)
