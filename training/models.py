"""Model versions (checkpoints in the model store) and their activation history."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models

from core.actions import ActionRefused
from core.jobs import JobRow, Lifecycle
from training.ml.families import family_of


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
    pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="Weights removed by prune_versions; lineage, metrics and data snapshot kept."
    )
    pruned_bytes = models.BigIntegerField(default=0, help_text="Bytes of weights freed when the version was pruned.")

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

    @property
    def is_pruned(self) -> bool:
        return self.pruned_at is not None

    @property
    def family(self) -> str | None:
        """``causal`` or ``seq2seq``, from the checkpoint's own ``config.json`` (JSON only: the web process
        may ask); None when the directory holds no config (the checkpoint is gone)."""
        return family_of(self.path) if (self.path / "config.json").is_file() else None

    def refuse_if_pruned(self, use: str) -> None:
        """Raise ``ActionRefused`` (409) when this version's weights were pruned, naming ``use`` (e.g. "activated")."""
        if self.pruned_at is not None:
            raise ActionRefused(
                f"Version {self.name} cannot be {use}: its weights were pruned on {self.pruned_at:%Y-%m-%d %H:%M} "
                "(lineage, metrics and data snapshot are kept). Train it again from its parent to get weights back.",
                409,
            )

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
    overridden = models.BooleanField(default=False, help_text="Staff overrode the promotion gate (see reason).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.previous} → {self.version} at {self.created_at:%Y-%m-%d %H:%M}"


class TrainingRun(JobRow):
    """One SFT or DPO run: its row owns the job's truth (status, progress, error), clients poll it."""

    class Kind(models.TextChoices):
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    parent = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="training_runs")
    result_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="produced_by"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    hyperparameters = models.JSONField(default=dict, blank=True)
    data_filters = models.JSONField(default=dict, blank=True)
    data_snapshot = models.JSONField(default=dict, blank=True, help_text="Row ids, count and content hash, frozen at start.")
    output_directory = models.CharField(max_length=255, unique=True, help_text="Relative to MODEL_STORE.")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    loss_history = models.JSONField(default=list, blank=True, help_text="[[step, loss], ...]")
    metrics = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    device = models.CharField(max_length=50, blank=True)
    cancel_requested = models.BooleanField(default=False)
    is_first_sft = models.BooleanField(
        default=False, help_text="The first SFT of a fresh platform: activated on its own if it beats its parent."
    )
    auto_activation = models.TextField(
        blank=True, help_text="First SFT: whether it was activated after both evaluations, and why (empty while undecided)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="training_run_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="succeeded") | models.Q(result_version__isnull=False),
                name="succeeded_run_has_version",
            ),
            # Never two first-SFT runs alive or done; a failed or cancelled one may be followed by another.
            models.UniqueConstraint(
                fields=["is_first_sft"],
                condition=models.Q(is_first_sft=True, status__in=["queued", "running", "succeeded"]),
                name="one_first_sft_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} [{self.status}]"

    @property
    def rows_used(self) -> int:
        """Rows the run trains on: the frozen snapshot, or its seeded sample when ``subset_size`` is smaller."""
        count = int(self.data_snapshot.get("count", 0))
        subset = self.hyperparameters.get("subset_size")
        return min(count, subset) if isinstance(subset, int) and subset > 0 else count

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def snapshot_path(self) -> Path:
        """The frozen training records, written when the run is started."""
        return Path(settings.MODEL_STORE) / ".runs" / f"run-{self.pk}.jsonl"


def _remove_partial_output(run: TrainingRun) -> None:
    from training.ml.checkpoints import remove_stale_temporaries

    remove_stale_temporaries(Path(settings.MODEL_STORE), prefix=run.output_directory)


TRAINING_JOBS = Lifecycle(
    TrainingRun,
    queue="training",
    job="training.jobs.run_training",
    heartbeat_timeout=lambda: settings.JOB_HEARTBEAT_TIMEOUT,
    job_timeout=lambda: settings.TRAINING_JOB_TIMEOUT,
    on_reaped=_remove_partial_output,
)
