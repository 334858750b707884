"""Prompts, generated candidates, annotation items, judgements and the preference pairs they yield.

Nothing a user did is deleted by the platform: foreign keys to user work are PROTECT, and review
changes are recorded as ``ReviewEvent`` rows next to the edited pair.
"""
from __future__ import annotations

import hashlib
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q

# Candidates come from model versions, which live in ``training`` (a floor above). Annotations refers
# to them as Django's lazy model reference "training.ModelVersion" — never by importing training.
MODEL_VERSION_MODEL = "training.ModelVersion"
ModelVersionRef = Any  # an instance of MODEL_VERSION_MODEL


def active_model_version() -> ModelVersionRef | None:
    """The version annotators get candidates from (None before one is activated)."""
    return apps.get_model(MODEL_VERSION_MODEL).objects.filter(is_active=True).first()


def normalise_text(text: str) -> str:
    return " ".join(text.split())


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).lower().encode()).hexdigest()


def is_heldout_hash(digest: str, percent: int) -> bool:
    """Deterministic held-out split: the same text lands on the same side on every machine."""
    return int(digest[:8], 16) % 100 < percent


class PromptQuerySet(models.QuerySet):
    def for_annotation(self) -> "PromptQuerySet":
        return self.filter(is_heldout=False)

    def heldout(self) -> "PromptQuerySet":
        return self.filter(is_heldout=True)


class Prompt(models.Model):
    """A toxic sentence to rewrite, with the human neutral references where the source has them."""

    text = models.TextField()
    text_hash = models.CharField(max_length=64, unique=True, editable=False)
    source = models.CharField(max_length=100, db_index=True)
    references = models.JSONField(default=list, blank=True)
    is_heldout = models.BooleanField(default=False, db_index=True, help_text="Kept out of annotation for evaluation.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PromptQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]

    def set_text(self, text: str) -> None:
        """Set the text with its hash and the held-out side derived from it (never one without the others)."""
        self.text = normalise_text(text)
        self.text_hash = text_hash(self.text)
        self.is_heldout = is_heldout_hash(self.text_hash, settings.HELDOUT_PERCENT)


class AnnotationItem(models.Model):
    """A prompt with the candidates to judge: best-of-N from one version, or an A/B arena match.

    A gold item (``gold_candidate`` set) has a known best answer; it is mixed into annotators'
    queues to measure their accuracy and never leaves the pool.
    """

    class Kind(models.TextChoices):
        BEST_OF_N = "best_of_n", "Best of N from one version"
        ARENA = "arena", "Blind A/B between versions"

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BEST_OF_N, db_index=True)
    model_version = models.ForeignKey(
        MODEL_VERSION_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="items",
        help_text="The version that sampled all candidates (empty for arena matches).",
    )
    comparison = models.ForeignKey(
        "arena.Comparison", null=True, blank=True, on_delete=models.PROTECT, related_name="items"
    )
    gold_candidate = models.ForeignKey(
        "Candidate", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Known best answer: makes this a gold item for quality control.",
    )
    diversity = models.FloatField(
        null=True, blank=True, help_text="How different the candidates are (0 same .. 1 disjoint): model uncertainty."
    )
    judgements_needed = models.PositiveSmallIntegerField(default=1)
    model_echo = models.TextField(
        blank=True, default="",
        help_text="A sample that handed the prompt back, as the model wrote it: withheld from annotators, "
        "rejected by DPO's input-rejection pairs.",
    )
    is_complete = models.BooleanField(
        default=False,
        help_text="Set once it has all its judgements, so serving never scans finished items (never set on gold items).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def is_gold(self) -> bool:
        return self.gold_candidate_id is not None

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["model_version", "kind"], condition=models.Q(is_complete=False), name="open_items"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk}: {self.prompt}"


class Candidate(models.Model):
    """A rewrite sampled server-side, with full provenance; users choose by id, never by text."""

    item = models.ForeignKey(AnnotationItem, on_delete=models.PROTECT, related_name="candidates")
    model_version = models.ForeignKey(MODEL_VERSION_MODEL, on_delete=models.PROTECT, related_name="candidates")
    text = models.TextField()
    decoding = models.JSONField(default=dict, help_text="Sampling parameters used.")
    seed = models.BigIntegerField()
    sample_index = models.PositiveSmallIntegerField(default=0)
    generation_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["item", "text"], name="candidate_text_unique_per_item")]

    def __str__(self) -> str:
        return self.text[:80]


class Assignment(models.Model):
    """An item shown to a user, with the order its candidates were shown in (shown once per user)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    item = models.ForeignKey(AnnotationItem, on_delete=models.PROTECT, related_name="assignments")
    candidate_order = models.JSONField(help_text="Candidate ids in the order shown.")
    shown_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-shown_at"]
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="one_assignment_per_user_item")]

    def __str__(self) -> str:
        return f"{self.user} ← item {self.item_id}"


class JudgementQuerySet(models.QuerySet):
    def saved_choices(self) -> "JudgementQuerySet":
        return self.exclude(kind=Judgement.Kind.SKIP)


class Judgement(models.Model):
    """One user's verdict on one item: a chosen candidate, their own rewrite, or a skip."""

    class Kind(models.TextChoices):
        CHOICE = "choice", "Chose a candidate"
        NONE_ACCEPTABLE = "none", "None acceptable, wrote own rewrite"
        TIE = "tie", "Tie (arena)"
        SKIP = "skip", "Skipped"

    class SkipReason(models.TextChoices):
        UNCLEAR = "unclear", "Unclear or not a sentence"
        NOT_TOXIC = "not_toxic", "Not toxic, nothing to rewrite"
        CANNOT_REWRITE = "cannot_rewrite", "Cannot be rewritten politely"
        TOO_OFFENSIVE = "too_offensive", "Too offensive for me"
        OTHER = "other", "Other"

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgement")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgements")
    item = models.ForeignKey(AnnotationItem, on_delete=models.PROTECT, related_name="judgements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    chosen_candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.PROTECT, related_name="chosen_in"
    )
    chosen_position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-based position shown.")
    own_rewrite = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JudgementQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "item"], name="one_judgement_per_user_item"),
            models.CheckConstraint(
                condition=(
                    Q(kind="choice", chosen_candidate__isnull=False)
                    | Q(kind="none", chosen_candidate__isnull=True) & ~Q(own_rewrite="")
                    | Q(kind="skip", chosen_candidate__isnull=True) & ~Q(skip_reason="")
                    | Q(kind="tie", chosen_candidate__isnull=True)
                ),
                name="judgement_kind_matches_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_kind_display()} on item {self.item_id}"


class PreferencePairQuerySet(models.QuerySet):
    def approved(self) -> "PreferencePairQuerySet":
        return self.filter(status=PreferencePair.Status.APPROVED)

    def pending(self) -> "PreferencePairQuerySet":
        return self.filter(status=PreferencePair.Status.PENDING)

    def with_annotator(self) -> "PreferencePairQuerySet":
        return self.select_related("judgement__user", "judgement__item__comparison", "prompt", "model_version", "reviewed_by")

    def in_open_comparison(self) -> "PreferencePairQuerySet":
        """Arena pairs of a comparison still open: which version won stays hidden from non-staff."""
        return self.filter(source=PreferencePair.Source.ARENA, judgement__item__comparison__is_open=True)


class PreferencePair(models.Model):
    """Chosen vs rejected rewrite of one prompt; only approved pairs become training data."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Source(models.TextChoices):
        ANNOTATION = "annotation", "Best-of-N annotation"
        ARENA = "arena", "A/B arena"
        IMPORTED = "imported", "Imported file"

    judgement = models.ForeignKey(Judgement, on_delete=models.PROTECT, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="pairs")
    model_version = models.ForeignKey(
        MODEL_VERSION_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="pairs"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.ANNOTATION)
    chosen_candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejected_candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    chosen_text = models.TextField()
    rejected_text = models.TextField()
    original_chosen_text = models.TextField(help_text="The chosen text as the annotator saved it.")
    is_own_rewrite = models.BooleanField(default=False, help_text="Chosen text written by the annotator.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    flagged = models.BooleanField(default=False, db_index=True)
    flag_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="reviewed_pairs"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PreferencePairQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"pair {self.pk} [{self.status}] {self.chosen_text[:40]!r} > {self.rejected_text[:40]!r}"

    @property
    def annotator(self):
        return self.judgement.user

    @property
    def in_open_comparison(self) -> bool:
        """An arena pair whose comparison is still open (its version is shown to staff only)."""
        if self.source != self.Source.ARENA:
            return False
        comparison = self.judgement.item.comparison
        return comparison is not None and comparison.is_open


class ReviewEvent(models.Model):
    """One review action on a pair, kept forever: who did what, when, and the values before/after."""

    pair = models.ForeignKey(PreferencePair, on_delete=models.PROTECT, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_events")
    action = models.CharField(max_length=20)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user} {self.action} pair {self.pair_id}"

