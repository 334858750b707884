"""API shapes. Serializers check shape only; the services check the rules."""
from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from ..models import Assignment, Candidate, Judgement, PreferencePair, Prompt, ReviewEvent
from ..review import BULK_ACTIONS


class ShownCandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    position = serializers.IntegerField(help_text="1-based position on screen (the key that chooses it).")


class AssignmentSerializer(serializers.ModelSerializer):
    """An item as the annotator sees it: no item, prompt or version id, so gold items (older items,
    often of an older version) look like any other."""

    prompt = serializers.CharField(source="item.prompt.text")
    candidates = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "prompt", "candidates", "shown_at"]

    def get_candidates(self, assignment: Assignment) -> list[dict]:
        texts = dict(Candidate.objects.filter(id__in=assignment.candidate_order).values_list("id", "text"))
        return [
            {"id": cid, "text": texts[cid], "position": index}
            for index, cid in enumerate(assignment.candidate_order, start=1)
        ]


class WaitQuerySerializer(serializers.Serializer):
    """``?wait=N`` of a next-item or next-match request: how long it may wait on the server (long poll)."""

    wait = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=settings.NEXT_ITEM_MAX_WAIT_SECONDS,
        help_text="Seconds to wait on the server when nothing is ready (0: answer at once). The answer "
        "comes as soon as one is generated; after the wait it is the usual empty answer.",
    )


class NextItemSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "generating", "exhausted"])
    message = serializers.CharField()
    assignment = AssignmentSerializer(allow_null=True)
    saved_choices = serializers.IntegerField(help_text="Judgements (not skips) this user has saved.")
    pool_ready = serializers.IntegerField()


class JudgementSubmitSerializer(serializers.Serializer):
    assignment = serializers.IntegerField(help_text="The assignment id returned by /api/annotate/next/.")
    candidate = serializers.IntegerField(required=False, allow_null=True, help_text="Id of the chosen candidate.")
    own_rewrite = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=settings.MAX_REWRITE_CHARS,
        trim_whitespace=True,
        help_text="Your rewrite when none of the candidates is acceptable.",
    )
    skip_reason = serializers.ChoiceField(choices=Judgement.SkipReason.choices, required=False, allow_blank=True)
    time_spent_ms = serializers.IntegerField(
        required=False, min_value=0, help_text="Ignored: the server measures the time since the item was shown."
    )


class JudgementSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    prompt = serializers.CharField(source="item.prompt.text")
    chosen_text = serializers.CharField(source="chosen_candidate.text", default=None, allow_null=True)
    shown_candidates = serializers.JSONField(source="assignment.candidate_order")
    model_version = serializers.CharField(source="item.model_version.name", default=None, allow_null=True)

    class Meta:
        model = Judgement
        fields = [
            "id", "assignment", "item", "user", "prompt", "model_version", "kind", "chosen_candidate",
            "chosen_text", "chosen_position", "own_rewrite", "skip_reason", "shown_candidates",
            "time_spent_ms", "created_at",
        ]


class ReviewEventSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")

    class Meta:
        model = ReviewEvent
        fields = ["action", "user", "before", "after", "created_at"]


class PreferencePairSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.text")
    annotator = serializers.CharField(source="judgement.user.username")
    model_version = serializers.CharField(source="model_version.name", default=None, allow_null=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", default=None, allow_null=True)

    class Meta:
        model = PreferencePair
        fields = [
            "id", "prompt", "chosen_text", "rejected_text", "original_chosen_text", "is_own_rewrite", "status",
            "flagged", "flag_note", "source", "annotator", "model_version", "judgement", "chosen_candidate",
            "rejected_candidate", "reviewed_by", "reviewed_at", "created_at",
        ]

    def to_representation(self, pair: PreferencePair) -> dict:
        """Arena pairs of an open comparison name no version (nor its candidates) except to staff."""
        data = super().to_representation(pair)
        request = self.context.get("request")
        if pair.in_open_comparison and not (request and request.user.is_staff):
            data.update(model_version=None, chosen_candidate=None, rejected_candidate=None)
        return data


class PairDetailSerializer(PreferencePairSerializer):
    events = ReviewEventSerializer(many=True, read_only=True)

    class Meta(PreferencePairSerializer.Meta):
        fields = PreferencePairSerializer.Meta.fields + ["events"]


class FlagSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class EditGoldSerializer(serializers.Serializer):
    chosen_text = serializers.CharField(max_length=settings.MAX_REWRITE_CHARS)


class BulkReviewSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=5000)
    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "text", "source", "references", "is_heldout", "created_at"]
