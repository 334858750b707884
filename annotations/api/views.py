"""REST endpoints for annotation and review; each action calls the same service as the web pages."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from core.actions import ActionRefused, Refused, run_action
from core.roles import IsReviewer, is_reviewer, role_of

from .. import pool, review, services
from ..models import Judgement, PreferencePair, Prompt, active_model_version
from . import serializers as s
from .filters import JudgementFilter, PairFilter, PromptFilter


def next_item_payload(user, wait_seconds: int = 0) -> dict:
    """What the annotate page and ``/api/annotate/next/`` show: an assignment or why there is none
    (after waiting up to ``wait_seconds`` for a refill when none is ready)."""
    assignment = run_action(services.wait_for_assignment, user=user, wait_seconds=wait_seconds)
    version = active_model_version()
    ready = pool.recent_ready_count(version) if version else 0
    saved = Judgement.objects.filter(user=user).saved_choices().count()
    if assignment is not None:
        state, message = "ready", "Choose the best rewrite."
    elif version is not None and pool.prompts_waiting(version):
        state, message = "generating", "The model is writing candidates; they appear here in a moment."
    else:
        state, message = "exhausted", "You have judged every available sentence. Thank you!"
    return {"status": state, "message": message, "assignment": assignment, "saved_choices": saved, "pool_ready": ready}


def judge(request, submit_serializer: type[Serializer], response_serializer: type[Serializer]) -> Response:
    """The one submit path for best-of-N and arena: validate the body, save the verdict with
    ``submit_judgement`` (choices by candidate id only), 201 for a new judgement, 200 for a repeat."""
    data = submit_serializer(data=request.data)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    judgement, created = run_action(
        services.submit_judgement,
        user=request.user,
        assignment_id=v["assignment"],
        candidate_id=v.get("candidate"),
        own_rewrite=v.get("own_rewrite", ""),
        tie=v.get("tie", False),
        skip_reason=v.get("skip_reason", ""),
    )
    return Response(response_serializer(judgement).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class NextItemView(APIView):
    @extend_schema(
        parameters=[s.WaitQuerySerializer],
        responses={200: s.NextItemSerializer, 400: OpenApiResponse(description="wait out of range: {wait: [message]}")},
        summary="Get the next item to annotate (or why none is ready), optionally waiting for one",
    )
    def get(self, request):
        query = s.WaitQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(s.NextItemSerializer(next_item_payload(request.user, query.validated_data["wait"])).data)


class JudgementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your judgements (reviewers may list everyone's with ``?user=``)."""

    serializer_class = s.JudgementSerializer
    filterset_class = JudgementFilter

    def get_queryset(self):
        qs = Judgement.objects.select_related("user", "item__prompt", "item__model_version", "chosen_candidate", "assignment")
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return qs.none()
        return qs if is_reviewer(self.request.user) else qs.filter(user=self.request.user)

    @extend_schema(
        request=s.JudgementSubmitSerializer,
        responses={201: s.JudgementSerializer, 200: OpenApiResponse(s.JudgementSerializer, "Already submitted")},
        summary="Submit a judgement: a candidate id, your own rewrite, or a skip reason",
    )
    def create(self, request):
        return judge(request, s.JudgementSubmitSerializer, s.JudgementSerializer)


class PairViewSet(viewsets.ReadOnlyModelViewSet):
    """Preference pairs for reviewers, with review actions."""

    permission_classes = [IsReviewer]
    filterset_class = PairFilter
    ordering_fields = ["created_at", "reviewed_at", "id"]
    queryset = PreferencePair.objects.with_annotator()

    def get_serializer_class(self):
        return s.PairDetailSerializer if self.action == "retrieve" else s.PreferencePairSerializer

    def _bulk(self, request, pk, name, note=""):
        pair = self.get_object()
        run_action(review.review_pairs, reviewer=request.user, pairs=[pair], action=name, note=note)
        pair.refresh_from_db()
        return Response(s.PairDetailSerializer(pair, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=s.PairDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._bulk(request, pk, "approve")

    @extend_schema(request=None, responses=s.PairDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._bulk(request, pk, "reject")

    @extend_schema(request=None, responses=s.PairDetailSerializer)
    @action(detail=True, methods=["post"])
    def swap(self, request, pk=None):
        return self._bulk(request, pk, "swap")

    @extend_schema(request=s.FlagSerializer, responses=s.PairDetailSerializer)
    @action(detail=True, methods=["post"])
    def flag(self, request, pk=None):
        data = s.FlagSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._bulk(request, pk, "flag", note=data.validated_data.get("note", ""))

    @extend_schema(request=None, responses=s.PairDetailSerializer)
    @action(detail=True, methods=["post"])
    def unflag(self, request, pk=None):
        return self._bulk(request, pk, "unflag")

    @extend_schema(request=s.EditGoldSerializer, responses=s.PairDetailSerializer, summary="Edit the gold rewrite")
    @action(detail=True, methods=["post"])
    def edit(self, request, pk=None):
        data = s.EditGoldSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = run_action(
            review.edit_gold_rewrite, reviewer=request.user, pair=self.get_object(), text=data.validated_data["chosen_text"]
        )
        return Response(s.PairDetailSerializer(pair, context=self.get_serializer_context()).data)

    @extend_schema(request=s.BulkReviewSerializer, responses={200: dict}, summary="Apply one action to many pairs")
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        data = s.BulkReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        missing = set(v["ids"]) - set(PreferencePair.objects.filter(id__in=v["ids"]).values_list("id", flat=True))
        if missing:
            raise Refused(ActionRefused(f"No such pairs: {sorted(missing)}", 404))
        count = run_action(review.review_pairs, reviewer=request.user, pairs=v["ids"], action=v["action"], note=v.get("note", ""))
        return Response({"action": v["action"], "updated": count})


class PromptViewSet(viewsets.ReadOnlyModelViewSet):
    """The prompt pool with references (reviewers and staff)."""

    permission_classes = [IsReviewer]
    serializer_class = s.PromptSerializer
    filterset_class = PromptFilter
    queryset = Prompt.objects.all()


@extend_schema(responses={200: dict}, summary="Who am I: username, role and my counts")
@api_view(["GET"])
def me(request):
    user = request.user
    judgements = Judgement.objects.filter(user=user)
    return Response(
        {
            "username": user.username,
            "role": role_of(user),
            "saved_choices": judgements.saved_choices().count(),
            "skips": judgements.filter(kind=Judgement.Kind.SKIP).count(),
        }
    )
