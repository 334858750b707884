"""API shapes of the quality reports (read from the report dataclasses) and of marking gold."""
from __future__ import annotations

from rest_framework import serializers


class PositionShareSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1-based position shown.")
    wins = serializers.IntegerField()
    expected = serializers.FloatField(help_text="Wins expected if every choice were random.")
    ratio = serializers.FloatField(allow_null=True, help_text="wins / expected: 1 is chance.")


class PositionBiasSerializer(serializers.Serializer):
    choices = serializers.IntegerField()
    positions = PositionShareSerializer(many=True)
    chi_square = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Chi-square p-value against chance (needs scipy).")


class PageSerializer(serializers.Serializer):
    """DRF page-number pagination of ``results`` (``?page=``), next to the report's other keys."""

    count = serializers.IntegerField(help_text="Rows in all pages.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class OverallSerializer(serializers.Serializer):
    judgements = serializers.IntegerField()
    overlapping_items = serializers.IntegerField(help_text="Items answered by two or more annotators.")
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha (nominal) on those items.")
    agreement = serializers.FloatField(allow_null=True, help_text="Observed pairwise agreement on those items.")


class ThresholdsSerializer(serializers.Serializer):
    min_gold_accuracy = serializers.FloatField()
    min_seconds_per_item = serializers.FloatField()
    min_answers = serializers.IntegerField()
    position_bias_p = serializers.FloatField()


class AnnotatorRowSerializer(serializers.Serializer):
    username = serializers.CharField()
    judgements = serializers.IntegerField()
    skips = serializers.IntegerField()
    none_acceptable_rate = serializers.FloatField(allow_null=True)
    gold_seen = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True, help_text="Share of answers matching another annotator's.")
    agreement_compared = serializers.IntegerField()
    position1_share = serializers.FloatField(allow_null=True)
    position1_chance = serializers.FloatField(allow_null=True)
    position_bias = PositionBiasSerializer()
    median_seconds = serializers.FloatField(allow_null=True, help_text="Median time per answered item.")
    pending_pairs = serializers.IntegerField()
    approved_pairs = serializers.IntegerField()
    rejected_pairs = serializers.IntegerField()
    flags = serializers.ListField(child=serializers.CharField())


class AnnotatorReportSerializer(PageSerializer):
    overall = OverallSerializer()
    thresholds = ThresholdsSerializer()
    results = AnnotatorRowSerializer(many=True)


class VersionRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    items = serializers.IntegerField()
    judgements = serializers.IntegerField()
    skips = serializers.IntegerField()
    none_acceptable_rate = serializers.FloatField(allow_null=True, help_text="No candidate acceptable: model-quality proxy.")
    mean_chosen_position = serializers.FloatField(allow_null=True)
    position_bias = PositionBiasSerializer()
    overlapping_items = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True)
    median_seconds = serializers.FloatField(allow_null=True)


class VersionReportSerializer(PageSerializer):
    overall = OverallSerializer()
    results = VersionRowSerializer(many=True)


class GoldItemInputSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="Annotation item id.")
    candidate = serializers.IntegerField(help_text="Id of the item's candidate that is the known best answer.")


class GoldItemSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="pk")
    prompt = serializers.CharField(source="prompt.text")
    model_version = serializers.CharField(source="model_version.name", allow_null=True)
    candidate = serializers.IntegerField(source="gold_candidate_id")
    gold_text = serializers.CharField(source="gold_candidate.text")
    answered = serializers.IntegerField(required=False, help_text="Answers (not skips) so far.")
    correct = serializers.IntegerField(required=False)
