"""Reviewer-only JSONL downloads of the exports (``annotations.exports``), streamed row by row.

Filters are those of the pair list (``PairFilter``), so what a reviewer sees in ``/api/pairs/`` is
what they download; bad filters answer 400 before any row is streamed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import django_filters
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from .. import exports
from ..models import AnnotationItem, Judgement, PreferencePair
from core.roles import IsReviewer
from .filters import JudgementFilter, PairFilter

JSONL = "application/jsonl"


class JSONLinesRenderer(BaseRenderer):
    """Lets clients ask for ``Accept: application/jsonl``; errors then arrive as one JSON line."""

    media_type = JSONL
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return (json.dumps(data, ensure_ascii=False) + "\n").encode()


class JudgementExportFilter(JudgementFilter):
    annotator = django_filters.CharFilter(field_name="user__username", help_text="Annotator username.")
    model_version = django_filters.CharFilter(field_name="item__model_version__name", help_text="Model version name.")


def _filtered(filterset_class, params, queryset, request=None):
    filterset = filterset_class(params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def _pairs(request, *, default_status: str = "approved"):
    params = request.query_params.copy()
    status = params.pop("status", [default_status])[-1] or default_status
    try:
        pairs = exports.pairs_for_export(status=status)
    except exports.ExportError as exc:
        raise ValidationError({"status": [str(exc)]}) from exc
    return _filtered(PairFilter, params, pairs, request)


def _blind_pairs(records: Iterable[dict[str, Any]], user) -> Iterator[dict[str, Any]]:
    """Non-staff never learn which version wrote (or won) a match of a comparison still open."""
    if user.is_staff:
        yield from records
        return
    hidden = set(PreferencePair.objects.in_open_comparison().values_list("id", flat=True))
    for record in records:
        if record["pair_id"] in hidden:
            record = {**record, "model_version": None, "model_version_id": None}
        yield record


def _blind_judgements(records: Iterable[dict[str, Any]], user) -> Iterator[dict[str, Any]]:
    if user.is_staff:
        yield from records
        return
    open_comparisons = set(
        AnnotationItem.objects.filter(kind=AnnotationItem.Kind.ARENA, comparison__is_open=True)
        .values_list("comparison_id", flat=True)
        .distinct()
    )
    for record in records:
        if record["comparison_id"] in open_comparisons:
            shown = [{**candidate, "model_version": None} for candidate in record["shown_candidates"]]
            record = {**record, "shown_candidates": shown}
        yield record


def _attachment(records: Iterable[dict[str, Any]], name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(exports.jsonl_lines(records), content_type=f"{JSONL}; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.jsonl"'
    return response


PAIR_PARAMETERS = [
    OpenApiParameter("status", str, enum=list(exports.STATUS_CHOICES), description="Pair status (default approved)."),
    OpenApiParameter("annotator", str, description="Annotator username."),
    OpenApiParameter("model_version", str, description="Model version name."),
    OpenApiParameter("source", str, description="Pair source (annotation, arena)."),
    OpenApiParameter("flagged", bool),
    OpenApiParameter("is_own_rewrite", bool),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME),
]


def _jsonl_response(description: str) -> dict:
    return {
        (200, JSONL): OpenApiResponse(OpenApiTypes.BINARY, description=description),
        400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid filter: `{parameter: [messages]}`."),
    }


class ExportView(APIView):
    permission_classes = [IsReviewer]
    renderer_classes = [JSONRenderer, JSONLinesRenderer]


class PreferenceExportView(ExportView):
    @extend_schema(
        operation_id="export_preferences",
        summary="Download preference pairs as TRL prompt/chosen/rejected JSONL (reviewers)",
        parameters=PAIR_PARAMETERS,
        responses=_jsonl_response("One pair per line with provenance; prompt is the raw toxic text."),
    )
    def get(self, request):
        return _attachment(_blind_pairs(exports.preference_records(_pairs(request)), request.user), "preferences")


class SFTExportView(ExportView):
    @extend_schema(
        operation_id="export_sft",
        summary="Download approved gold rewrites as SFT prompt/completion JSONL (reviewers)",
        parameters=[
            *(p for p in PAIR_PARAMETERS if p.name != "status"),
            OpenApiParameter("references", bool, description="Also the human references of non-held-out prompts."),
        ],
        responses=_jsonl_response("One prompt/completion row per prompt and gold rewrite."),
    )
    def get(self, request):
        with_references = request.query_params.get("references", "").lower() in ("1", "true", "yes")
        pairs = _pairs(request, default_status="approved")
        return _attachment(exports.sft_records(pairs, include_references=with_references), "sft")


class JudgementExportView(ExportView):
    @extend_schema(
        operation_id="export_judgements",
        summary="Download every raw judgement with its provenance as JSONL (reviewers)",
        parameters=[
            OpenApiParameter("annotator", str, description="Annotator username."),
            OpenApiParameter("model_version", str, description="Model version name."),
            OpenApiParameter("kind", str, enum=Judgement.Kind.values),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
        ],
        responses=_jsonl_response("One judgement per line, with the candidates in the order shown."),
    )
    def get(self, request):
        judgements = _filtered(JudgementExportFilter, request.query_params, exports.judgements_for_export(), request)
        return _attachment(_blind_judgements(exports.judgement_records(judgements), request.user), "judgements")
