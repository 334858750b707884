"""Admin for arena comparisons: open them from /arena/comparisons/ (which queues generation); here
staff filter, close and retry. Generation provenance is read-only."""
from __future__ import annotations

from django.contrib import admin, messages

from core.actions import ActionRefused

from . import services
from .models import Comparison


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = (
        "id", "name", "version_names", "is_open", "status", "matches_ready", "matches_wanted", "judgement_count",
        "identical_skipped", "created_by", "created_at",
    )
    list_filter = ("is_open", "status", "versions")
    search_fields = ("name", "versions__name")
    readonly_fields = (
        "versions", "matches_wanted", "is_open", "status", "identical_skipped", "error", "created_by", "created_at",
        "generated_at", "closed_at",
    )
    actions = ("close_selected", "retry_generation")

    def get_queryset(self, request):
        return super().get_queryset(request).with_counts().prefetch_related("versions")

    def has_add_permission(self, request) -> bool:
        return False  # opening queues generation: use the Arena comparisons page or the API

    @admin.display(description="versions")
    def version_names(self, comparison: Comparison) -> str:
        return ", ".join(sorted(v.name for v in comparison.versions.all()))

    @admin.display(description="matches", ordering="matches_ready")
    def matches_ready(self, comparison: Comparison) -> int:
        return comparison.matches_ready

    @admin.display(description="judgements", ordering="judgement_count")
    def judgement_count(self, comparison: Comparison) -> int:
        return comparison.judgement_count

    def _each(self, request, queryset, action, done: str) -> None:
        count = 0
        for comparison in queryset:
            try:
                action(comparison=comparison)
                count += 1
            except ActionRefused as exc:
                self.message_user(request, exc.message, messages.WARNING)
        if count:
            self.message_user(request, f"{count} comparison(s) {done}.", messages.SUCCESS)

    @admin.action(description="Close selected comparisons")
    def close_selected(self, request, queryset):
        self._each(request, queryset, lambda comparison: services.close_comparison(comparison=comparison, user=request.user), "closed")

    @admin.action(description="Generate missing matches again (failed or short comparisons)")
    def retry_generation(self, request, queryset):
        self._each(request, queryset, services.retry_generation, "queued for generation")
