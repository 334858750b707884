"""REST endpoints for quality control: the reports (reviewers) and marking gold items (staff)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actions import run_action
from annotations.models import AnnotationItem, Candidate
from core.roles import IsReviewer, IsStaff
from core.schema import ErrorSerializer
from training.models import ModelVersion

from .. import services
from . import serializers as s


PAGE = OpenApiParameter("page", int, description="A page number within the paginated results.")


def paginated_report(request, view, rows, **report) -> dict:
    """``report`` with one page of ``rows`` as ``results`` plus ``count``, ``next`` and ``previous``."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return {
        "count": paginator.page.paginator.count,
        "next": paginator.get_next_link(),
        "previous": paginator.get_previous_link(),
        **report,
        "results": page,
    }


class AnnotatorQualityView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, description="Only judgements of this model version's items."),
            PAGE,
        ],
        responses={
            200: s.AnnotatorReportSerializer,
            404: OpenApiResponse(ErrorSerializer, "No model version of that name."),
        },
        summary="Per-annotator quality: gold accuracy, agreement, position bias, time, pair counts, flags",
    )
    def get(self, request):
        name = request.query_params.get("version")
        version = get_object_or_404(ModelVersion, name=name) if name else None
        report = paginated_report(
            request,
            self,
            services.annotator_report(version=version),
            overall=services.overall_agreement(version=version),
            thresholds=services.Thresholds.from_settings(),
        )
        return Response(s.AnnotatorReportSerializer(report).data)


class VersionQualityView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        parameters=[PAGE],
        responses=s.VersionReportSerializer,
        summary="Per-version judgement statistics: none-acceptable rate, chosen positions, agreement",
    )
    def get(self, request):
        report = paginated_report(request, self, services.version_report(), overall=services.overall_agreement())
        return Response(s.VersionReportSerializer(report).data)


class GoldItemView(generics.GenericAPIView):
    """Gold items: reviewers list them with accuracy; staff mark an item's known best candidate."""

    def get_permissions(self):
        return [IsStaff()] if self.request.method == "POST" else [IsReviewer()]

    serializer_class = s.GoldItemSerializer
    filter_backends = []

    @extend_schema(responses=s.GoldItemSerializer(many=True), summary="Gold items with answers and correct answers")
    def get(self, request):
        page = self.paginate_queryset(services.gold_items())
        return self.get_paginated_response(s.GoldItemSerializer(page, many=True).data)

    @extend_schema(
        request=s.GoldItemInputSerializer,
        responses={201: s.GoldItemSerializer, 404: OpenApiResponse(ErrorSerializer, "No such item or candidate.")},
        summary="Mark a gold item",
    )
    def post(self, request):
        data = s.GoldItemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = get_object_or_404(AnnotationItem, pk=data.validated_data["item"])
        candidate = get_object_or_404(Candidate, pk=data.validated_data["candidate"])
        item = run_action(services.make_gold_item, item=item, candidate=candidate, user=request.user)
        return Response(s.GoldItemSerializer(item).data, status=status.HTTP_201_CREATED)
