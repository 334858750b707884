"""Blind A/B comparisons between model versions; each match is an ``AnnotationItem`` of kind arena."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from core.jobs import JobRow, JobRowQuerySet, Lifecycle


class ComparisonQuerySet(JobRowQuerySet):
    def with_counts(self) -> "ComparisonQuerySet":
        """Annotate ``matches_ready`` (generated matches), ``judgement_count`` (choices and ties), ``skip_count``."""
        return self.annotate(
            matches_ready=models.Count("items", distinct=True),
            judgement_count=models.Count(
                "items__judgements", filter=models.Q(items__judgements__kind__in=["choice", "tie"]), distinct=True
            ),
            skip_count=models.Count("items__judgements", filter=models.Q(items__judgements__kind="skip"), distinct=True),
        ).order_by("-created_at", "-id")  # Meta.ordering is dropped from aggregating queries


class Comparison(JobRow):
    """Staff ask "which of these versions rewrites better?"; annotators answer blind, match by match.

    The row owns the truth of its generation job: ``status``, ``error`` and how many sampled
    matches were dropped because both versions wrote the same text.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        GENERATING = "generating", "Generating matches"
        READY = "ready", "Matches ready"
        FAILED = "failed", "Generation failed"

    RUNNING_STATUS = Status.GENERATING
    SUCCEEDED_STATUS = Status.READY

    name = models.CharField(max_length=200)
    versions = models.ManyToManyField("training.ModelVersion", related_name="comparisons")
    matches_wanted = models.PositiveIntegerField(default=50, help_text="Matches to generate (prompt × version pair).")
    is_open = models.BooleanField(default=True, help_text="Open comparisons are served to annotators.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    identical_skipped = models.PositiveIntegerField(
        default=0, help_text="Sampled matches dropped because both versions wrote the same text."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    generated_at = models.DateTimeField(null=True, blank=True, help_text="When generation finished.")
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(matches_wanted__gte=1), name="comparison_wants_a_match"),
            models.CheckConstraint(
                condition=models.Q(is_open=True, closed_at__isnull=True) | models.Q(is_open=False, closed_at__isnull=False),
                name="comparison_closed_at_iff_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{'' if self.is_open else ' (closed)'}"

    @property
    def is_generating(self) -> bool:
        return not self.is_finished


ARENA_JOBS = Lifecycle(
    Comparison,
    queue="evaluation",  # batch work beside evaluations: the annotation pool's refills never wait behind it
    job="arena.jobs.generate_matches",
    heartbeat_timeout=lambda: settings.JOB_HEARTBEAT_TIMEOUT,
)
