"""Arena API shapes. A match as an annotator sees it names no version: only sides A and B."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.api.serializers import WaitQuerySerializer
from annotations.models import Assignment, Candidate, Judgement
from training.models import ModelVersion

from ..models import Comparison
from ..services import MAX_MATCHES

SIDES = "AB"


class VersionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "name"]


class ComparisonSerializer(serializers.ModelSerializer):
    versions = VersionBriefSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    matches_ready = serializers.IntegerField(read_only=True, help_text="Matches generated so far.")
    judgements = serializers.IntegerField(source="judgement_count", read_only=True, help_text="Choices and ties.")

    class Meta:
        model = Comparison
        fields = [
            "id", "name", "versions", "matches_wanted", "matches_ready", "judgements", "status", "is_open",
            "identical_skipped", "error", "created_by", "created_at", "generated_at", "closed_at",
        ]


class OpenComparisonSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    versions = serializers.PrimaryKeyRelatedField(
        many=True, queryset=ModelVersion.objects.all(), help_text="Ids of two or more model versions."
    )
    matches_wanted = serializers.IntegerField(min_value=1, max_value=MAX_MATCHES, default=50)


class SideSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Candidate id: send it back to choose this side.")
    position = serializers.ChoiceField(choices=list(SIDES), help_text="Side on screen: A (key a or 1) or B (key b or 2).")
    text = serializers.CharField()


class MatchSerializer(serializers.ModelSerializer):
    """One arena match as shown: the prompt and two unlabelled rewrites in the recorded order."""

    prompt = serializers.CharField(source="item.prompt.text")
    comparison = serializers.IntegerField(source="item.comparison_id")
    candidates = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "comparison", "prompt", "candidates", "shown_at"]

    @extend_schema_field(SideSerializer(many=True))
    def get_candidates(self, assignment: Assignment) -> list[dict]:
        texts = dict(Candidate.objects.filter(id__in=assignment.candidate_order).values_list("id", "text"))
        return [
            {"id": cid, "position": side, "text": texts[cid]} for side, cid in zip(SIDES, assignment.candidate_order)
        ]

class NextMatchQuerySerializer(WaitQuerySerializer):
    comparison = serializers.IntegerField(required=False, min_value=1, help_text="Only matches of this comparison.")


class NextMatchSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "generating", "exhausted"])
    message = serializers.CharField()
    assignment = MatchSerializer(allow_null=True)
    judged = serializers.IntegerField(help_text="Arena choices and ties this user has saved.")


class ArenaJudgementSubmitSerializer(serializers.Serializer):
    assignment = serializers.IntegerField(help_text="The assignment id returned by /api/arena/next/.")
    candidate = serializers.IntegerField(required=False, allow_null=True, help_text="Id of the better side's candidate.")
    tie = serializers.BooleanField(default=False, help_text="Both sides are equally good (or equally bad).")
    skip_reason = serializers.ChoiceField(choices=Judgement.SkipReason.choices, required=False, allow_blank=True)
    time_spent_ms = serializers.IntegerField(
        required=False, min_value=0, help_text="Ignored: the server measures the time since the match was shown."
    )

    def validate(self, attrs: dict) -> dict:
        given = [attrs.get("candidate") is not None, attrs.get("tie", False), bool(attrs.get("skip_reason"))]
        if sum(given) != 1:
            raise serializers.ValidationError("Give exactly one of: a candidate id, tie: true, or a skip reason.")
        return attrs


class ArenaJudgementSerializer(serializers.ModelSerializer):
    chosen_side = serializers.SerializerMethodField()

    class Meta:
        model = Judgement
        fields = ["id", "assignment", "kind", "chosen_candidate", "chosen_side", "skip_reason", "time_spent_ms", "created_at"]

    def get_chosen_side(self, judgement: Judgement) -> str | None:
        return SIDES[judgement.chosen_position - 1] if judgement.chosen_position else None


class StandingSerializer(serializers.Serializer):
    version = serializers.CharField()
    version_id = serializers.IntegerField(allow_null=True)
    rating = serializers.FloatField(help_text="Bradley–Terry strength on the Elo scale (mean 1000).")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    judgements = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True, help_text="(wins + ties / 2) / judgements.")


class ResultsSerializer(serializers.Serializer):
    comparison = ComparisonSerializer()
    standings = StandingSerializer(many=True, help_text="Best rating first.")
    win_rates = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
        help_text="win_rates[row][column]: how often row beat column (ties half); null if they never met.",
    )
    pair_judgements = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    judgements = serializers.IntegerField(help_text="Choices and ties.")
    ties = serializers.IntegerField()
    skips = serializers.IntegerField()
    confidence = serializers.FloatField()
    method = serializers.CharField()
