from __future__ import annotations

from datetime import timezone

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from ..models import Judgement, PreferencePair, Prompt


class UTCIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 allows offsets up to ±23:59 and year 1; PostgreSQL refuses offsets past ±15:59
    (a 500). Compare in UTC, and answer 400 for a moment that has no UTC form."""

    def to_python(self, value):
        parsed = super().to_python(value)
        try:
            return parsed.astimezone(timezone.utc) if parsed is not None and parsed.tzinfo else parsed
        except OverflowError as exc:
            raise forms.ValidationError(f"{value} is out of range.", code="invalid") from exc


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class PairFilter(django_filters.FilterSet):
    annotator = django_filters.CharFilter(field_name="judgement__user__username", help_text="Annotator username.")
    model_version = django_filters.CharFilter(method="filter_model_version", help_text="Model version name.")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    search = django_filters.CharFilter(method="filter_search", help_text="Text in prompt, chosen or rejected.")

    class Meta:
        model = PreferencePair
        fields = ["status", "flagged", "source", "is_own_rewrite", "reviewed_by"]

    def filter_model_version(self, queryset, name, value):
        queryset = queryset.filter(model_version__name=value)
        user = getattr(self.request, "user", None)
        if not (user and user.is_staff):  # filtering by version must not tell who won a blind match
            queryset = queryset.exclude(pk__in=PreferencePair.objects.in_open_comparison().values("pk"))
        return queryset

    def filter_search(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(
            Q(prompt__text__icontains=value) | Q(chosen_text__icontains=value) | Q(rejected_text__icontains=value)
        )


class JudgementFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="user__username")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Judgement
        fields = ["kind"]


class PromptFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(field_name="text", lookup_expr="icontains")

    class Meta:
        model = Prompt
        fields = ["source", "is_heldout"]
