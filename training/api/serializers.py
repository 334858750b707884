from __future__ import annotations

from rest_framework import serializers

from training.ml.hyperparameters import tunable_hyperparameters

from ..models import ModelVersion, TrainingRun


class ModelVersionSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", default=None, allow_null=True)
    auto_activation = serializers.CharField(
        source="produced_by.auto_activation", default=None, allow_null=True, read_only=True,
        help_text="First SFT: whether it was activated on its own after both evaluations, and why; "
        "empty while undecided, null for other versions.",
    )
    family = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="causal (decoder-only) or seq2seq (encoder-decoder), from the checkpoint's config.json; "
        "null when the checkpoint directory has no config.",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "kind", "family", "parent", "is_active", "directory", "source", "hyperparameters", "metrics",
            "data_snapshot", "library_versions", "device", "notes", "created_at", "auto_activation",
            "pruned_at", "pruned_bytes",
        ]


class ActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    override = serializers.BooleanField(
        required=False, default=False, help_text="Activate despite a lower J or SIM than allowed (needs a reason)."
    )


class TrainingRunSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name")
    result_version = serializers.CharField(source="result_version.name", default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    progress = serializers.FloatField(read_only=True)
    rows_used = serializers.IntegerField(read_only=True, help_text="Rows trained on (after subset_size).")

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "status", "parent", "result_version", "created_by", "hyperparameters", "data_filters",
            "data_snapshot", "rows_used", "step", "total_steps", "progress", "loss", "eta_seconds", "loss_history", "metrics",
            "log_tail", "error", "traceback", "device", "cancel_requested", "is_first_sft", "auto_activation",
            "created_at", "started_at", "heartbeat_at", "finished_at",
        ]


class DataFiltersSerializer(serializers.Serializer):
    approved_since = serializers.DateTimeField(required=False, allow_null=True)
    annotator = serializers.CharField(required=False, allow_blank=True)
    source = serializers.CharField(required=False, allow_blank=True)
    include_references = serializers.BooleanField(required=False, default=True)
    include_gold_rewrites = serializers.BooleanField(required=False, default=True)
    any_version = serializers.BooleanField(
        required=False, default=False, help_text="DPO: also pairs sampled from other versions than the parent."
    )
    reject_input = serializers.BooleanField(
        required=False, default=True,
        help_text="DPO: add a pair rejecting the toxic input itself for each chosen answer (the model's commonest failure).",
    )
    reject_own_echo = serializers.BooleanField(
        required=False, default=True,
        help_text="DPO: those pairs reject the model's own echo of the input (as it wrote it) where the pool kept one.",
    )
    reject_input_only_echoed = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="DPO: add those pairs only on prompts where the model echoed (the pool kept an echo), not on every "
        "prompt. Null (default): automatic, every prompt after an SFT or base parent, only echoed ones after a DPO parent.",
    )


class StartRunSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["sft", "dpo"])
    parent = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.all(), required=False, help_text="Parent version id (default: the active one)."
    )
    filters = DataFiltersSerializer(required=False)
    hyperparameters = serializers.DictField(
        required=False,
        help_text="Any of these keys; a missing one takes its default. "
        + "; ".join(
            f"{hp.name} ({hp.type.__name__}{', ' + hp.kinds[0].upper() + ' only' if len(hp.kinds) == 1 else ''}): "
            + hp.describe()
            for hp in tunable_hyperparameters()
        ),
    )


class FirstSFTOfferSerializer(serializers.Serializer):
    offered = serializers.BooleanField(help_text="Whether POST starts the first SFT now.")
    reason = serializers.CharField(allow_null=True, help_text="Why it is not offered (null when it is).")
