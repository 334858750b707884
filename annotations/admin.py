"""Django admin for staff: search, filter, bulk review actions; provenance fields are read-only."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.utils import timezone

from . import exports, review
from .models import (
    AnnotationItem, Assignment, Candidate, Judgement, PreferencePair, Prompt, ReviewEvent, normalise_text, text_hash,
)


class PromptAdminForm(forms.ModelForm):
    class Meta:
        model = Prompt
        fields = ["text", "source", "references"]

    def clean_text(self) -> str:
        text = normalise_text(self.cleaned_data["text"])
        if Prompt.objects.filter(text_hash=text_hash(text)).exists():
            raise forms.ValidationError("This sentence is already a prompt.")
        return text


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    """The text is fixed once saved: its hash decides the held-out split, and items and judgements
    refer to it. A new prompt gets its hash and held-out side from the text, like an import."""

    form = PromptAdminForm
    list_display = ("id", "text", "source", "is_heldout", "created_at")
    list_filter = ("source", "is_heldout")
    search_fields = ("text",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("is_heldout", "text_hash", "created_at")
        return ("text", "is_heldout", "text_hash", "created_at")

    def save_model(self, request, obj: Prompt, form, change: bool) -> None:
        if not change:
            obj.set_text(obj.text)
        super().save_model(request, obj, form, change)


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    can_delete = False
    readonly_fields = ("text", "model_version", "decoding", "seed", "sample_index", "generation_seconds", "created_at")


@admin.register(AnnotationItem)
class AnnotationItemAdmin(admin.ModelAdmin):
    list_display = ("id", "prompt", "model_version", "judgements_needed", "created_at")
    list_filter = ("model_version", ("gold_candidate", admin.EmptyFieldListFilter))
    search_fields = ("prompt__text",)
    # Gold answers are set on /quality/gold/ (quality.services.make_gold_item checks the candidate).
    readonly_fields = ("prompt", "model_version", "gold_candidate", "diversity", "model_echo", "created_at")
    inlines = [CandidateInline]

    def save_model(self, request, obj, form, change):
        if "judgements_needed" in form.changed_data:
            obj.is_complete = False  # reopened; the next judgement re-checks (pool.with_open_slots still counts)
        super().save_model(request, obj, form, change)


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("id", "text", "model_version", "seed", "created_at")
    list_filter = ("model_version",)
    search_fields = ("text", "item__prompt__text")
    readonly_fields = [f.name for f in Candidate._meta.fields]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "item", "shown_at")
    list_filter = ("user",)
    readonly_fields = ("user", "item", "candidate_order", "shown_at")


@admin.register(Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "kind", "item", "chosen_position", "time_spent_ms", "created_at")
    list_filter = ("kind", "user", "item__model_version", "created_at")
    search_fields = ("item__prompt__text", "own_rewrite", "user__username")
    readonly_fields = [f.name for f in Judgement._meta.fields]


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    extra = 0
    can_delete = False
    readonly_fields = ("user", "action", "before", "after", "created_at")


def _bulk(action: str, label: str):
    def run(modeladmin, request, queryset):
        count = review.review_pairs(reviewer=request.user, pairs=queryset, action=action)
        modeladmin.message_user(request, f"{label}: {count} pair(s).", messages.SUCCESS)

    run.short_description = f"{label} selected pairs"
    run.__name__ = f"{action}_pairs"
    return run


@admin.action(description="Export selected pairs as JSONL")
def export_pairs_jsonl(modeladmin, request, queryset):
    """Any status, as selected: the same rows and columns as ``preferences.jsonl`` of ``manage.py export``."""
    response = StreamingHttpResponse(
        exports.jsonl_lines(exports.preference_records(queryset.order_by("id"))), content_type="application/jsonl; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="pairs-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"'
    return response


@admin.register(PreferencePair)
class PreferencePairAdmin(admin.ModelAdmin):
    list_display = ("id", "prompt", "chosen_text", "rejected_text", "status", "flagged", "annotator_name", "model_version", "created_at")
    list_filter = ("status", "flagged", "source", "is_own_rewrite", "model_version", "judgement__user", "created_at")
    search_fields = ("prompt__text", "chosen_text", "rejected_text", "judgement__user__username")
    readonly_fields = (
        "judgement", "prompt", "model_version", "source", "chosen_candidate", "rejected_candidate",
        "original_chosen_text", "is_own_rewrite", "reviewed_by", "reviewed_at", "created_at", "updated_at",
        "chosen_text", "rejected_text", "status", "flagged",
    )
    fields = readonly_fields + ("flag_note",)
    actions = [_bulk("approve", "Approve"), _bulk("reject", "Reject"), _bulk("flag", "Flag"), _bulk("unflag", "Unflag"), _bulk("swap", "Swap chosen/rejected of"), export_pairs_jsonl]
    inlines = [ReviewEventInline]
    list_select_related = ("prompt", "model_version", "judgement__user")

    @admin.display(description="annotator", ordering="judgement__user__username")
    def annotator_name(self, pair: PreferencePair) -> str:
        return pair.judgement.user.username

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # user work is never deleted; reject it instead

    def save_model(self, request, obj, form, change) -> None:
        """An edited flag note goes through the review service, so it is recorded as a review event."""
        if change and "flag_note" in form.changed_data:
            review.review_pairs(reviewer=request.user, pairs=[obj], action="flag", note=obj.flag_note)
        elif not change:
            super().save_model(request, obj, form, change)


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "user", "action", "created_at")
    list_filter = ("action", "user")
    readonly_fields = [f.name for f in ReviewEvent._meta.fields]
