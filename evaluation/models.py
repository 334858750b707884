"""Automatic evaluations of model versions on the held-out prompts, with every output kept."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from core.jobs import JobRow, Lifecycle


class Evaluation(JobRow):
    """STA, SIM, FL, chrF and J of one version on a seeded sample of held-out prompts (greedy decoding)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="evaluations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    sample_size = models.PositiveIntegerField()
    seed = models.IntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="sta, sim, fl, chrf, j, n")
    meta = models.JSONField(default=dict, blank=True, help_text="Classifier, embedder, fluency mode, versions...")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        j = self.metrics.get("j")
        return f"evaluation of {self.version.name} [{self.status}]" + (f" J={j:.3f}" if j is not None else "")


class EvaluationOutput(models.Model):
    """One held-out sentence: the version's greedy rewrite and its scores."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="outputs")
    prompt = models.ForeignKey("annotations.Prompt", on_delete=models.PROTECT, related_name="+")
    output = models.TextField()
    toxicity = models.FloatField()
    sta = models.FloatField()
    sim = models.FloatField()
    fl = models.FloatField()
    chrf = models.FloatField(null=True, blank=True)
    j = models.FloatField()
    fl_flags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["prompt_id"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "prompt"], name="one_output_per_prompt")]

    def __str__(self) -> str:
        return self.output[:80]


def _settle_after_reaping(evaluation: Evaluation) -> None:
    """A reaped evaluation failed like any other: the first-model decision waiting on it moves on."""
    from .services import settle_after_evaluation

    settle_after_evaluation(evaluation)


EVALUATION_JOBS = Lifecycle(
    Evaluation,
    queue="evaluation",
    job="evaluation.jobs.evaluate_version",
    heartbeat_timeout=lambda: settings.JOB_HEARTBEAT_TIMEOUT,
    on_reaped=_settle_after_reaping,
)


class JudgeTraining(JobRow):
    """One training of the STA toxicity judge (``evaluation.judges``), queued by staff from the page or API."""

    Status = Evaluation.Status  # the same four states

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    result = models.JSONField(default=dict, blank=True, help_text="The judge.json written: accuracy of both judges, counts, hash.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"judge training {self.pk} [{self.status}]"


JUDGE_JOBS = Lifecycle(
    JudgeTraining,
    queue="evaluation",
    job="evaluation.jobs.train_judge",
    heartbeat_timeout=lambda: settings.JOB_HEARTBEAT_TIMEOUT,
)
