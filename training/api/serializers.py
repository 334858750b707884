from __future__ import annotations

from rest_framework import serializers

from ..models import ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", default=None)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "kind", "parent", "is_active", "directory", "source", "hyperparameters", "metrics",
            "data_snapshot", "library_versions", "device", "notes", "created_at",
        ]


class ActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
