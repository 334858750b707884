"""Model versions (checkpoints in the model store) and their activation history."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> "ModelVersion | None":
        return self.filter(is_active=True).first()


class ModelVersion(models.Model):
    """One self-describing checkpoint directory in ``MODEL_STORE``; exactly one is active."""

    class Kind(models.TextChoices):
        BASE = "base", "Base model"
        SFT = "sft", "Supervised fine-tuning"
        DPO = "dpo", "Direct preference optimisation"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    directory = models.CharField(max_length=255, unique=True, help_text="Relative to MODEL_STORE.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    is_active = models.BooleanField(default=False)
    source = models.CharField(max_length=500, blank=True, help_text="Base model the lineage starts from.")
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    data_snapshot = models.JSONField(default=dict, blank=True, help_text="Exact training rows: ids and hash.")
    library_versions = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=50, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_version")
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (active)' if self.is_active else ''}"

    @property
    def path(self) -> Path:
        return Path(settings.MODEL_STORE) / self.directory

    def lineage(self) -> list["ModelVersion"]:
        """This version and its ancestors, newest first."""
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain


class VersionActivation(models.Model):
    """Who switched the active version, when, from what, and why (rollbacks and overrides included)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.previous} → {self.version} at {self.created_at:%Y-%m-%d %H:%M}"
