from __future__ import annotations

import django_filters

from ..models import Judgement, PreferencePair, Prompt


class PairFilter(django_filters.FilterSet):
    annotator = django_filters.CharFilter(field_name="judgement__user__username", help_text="Annotator username.")
    model_version = django_filters.CharFilter(method="filter_model_version", help_text="Model version name.")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
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
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Judgement
        fields = ["kind"]


class PromptFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(field_name="text", lookup_expr="icontains")

    class Meta:
        model = Prompt
        fields = ["source", "is_heldout"]
