"""Model-version actions: register the base model, register a trained checkpoint, activate/roll back."""
from __future__ import annotations

import os
import re
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations import pool
from core.actions import ActionRefused
from core import queues
from training.ml.checkpoints import BUNDLED, prepare_base_checkpoint, read_version_file, remove_stale_temporaries
from training.ml.data import write_jsonl

from .datasets import DataFilters, dpo_data, sft_data, snapshot_summary
from .executor import build_config
from .models import ModelVersion, TrainingRun, VersionActivation

BUNDLED_NAME = "smollm2-135m-instruct"


def base_directory_name(source: str) -> str:
    if source == BUNDLED:
        return f"base-{BUNDLED_NAME}"
    return "base-" + re.sub(r"[^a-z0-9]+", "-", Path(source).name.lower()).strip("-")


def ensure_base_version(*, source: str | None = None, activate_if_none: bool = True) -> ModelVersion:
    """Convert ``BASE_MODEL`` into the store once and register it as a version (idempotent).

    It becomes active if no version is active yet, so a fresh platform can serve candidates at once.
    """
    source = source or settings.BASE_MODEL
    directory = base_directory_name(source)
    version = ModelVersion.objects.filter(directory=directory).first()
    if version is None:
        meta = prepare_base_checkpoint(source, Path(settings.MODEL_STORE) / directory, name=directory)
        version, _ = ModelVersion.objects.get_or_create(
            directory=directory,
            defaults=dict(
                name=directory,
                kind=ModelVersion.Kind.BASE,
                source=source,
                library_versions=meta.get("library_versions", {}),
                notes="Base model converted from " + source,
            ),
        )
        from evaluation.services import queue_evaluation_if_possible

        transaction.on_commit(lambda: queue_evaluation_if_possible(version.pk))
    if activate_if_none and not ModelVersion.objects.filter(is_active=True).exists():
        activate_version(version=version, user=None, reason="first version")
    return version


def register_version(
    *, directory: str, name: str, kind: str, parent: ModelVersion | None, **fields: Any
) -> ModelVersion:
    """Register a finished checkpoint directory (already renamed into place) as a new, inactive version."""
    meta = read_version_file(Path(settings.MODEL_STORE) / directory)
    fields.setdefault("library_versions", meta.get("library_versions", {}))
    fields.setdefault("source", parent.source if parent else "")
    return ModelVersion.objects.create(directory=directory, name=name, kind=kind, parent=parent, **fields)


def activate_version(*, version: ModelVersion, user=None, reason: str = "", override: bool = False) -> VersionActivation:
    """Make ``version`` the one annotators get candidates from; the change is logged for rollback.

    The promotion gate (``evaluation.services.promotion_check``) refuses a version whose J drops
    significantly against the active version's on the same prompts, whose similarity is too low, or
    that cannot be compared with the active one, unless staff ``override`` it with a ``reason``.
    The returned activation carries the gate's ``warning`` (e.g. ΔJ within noise; not stored).
    Generation workers read the active version per job, so they switch without a restart; the new
    version's pool is refilled after commit.
    """
    from evaluation.services import promotion_check

    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(is_active=True).first()
        check = promotion_check(version, current)
        problem = check.problem
        if problem and not (override and reason.strip()):
            raise ActionRefused(problem, 409)
        if current is not None and current.pk != version.pk:
            ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
        version.is_active = True
        activation = VersionActivation.objects.create(
            version=version, previous=current, activated_by=user, reason=reason, overridden=bool(problem)
        )
        transaction.on_commit(lambda: pool.request_refill(version))
    activation.warning = check.warning
    return activation


# --- training runs ---------------------------------------------------------------------------------


def start_training_run(
    *,
    kind: str,
    parent: ModelVersion,
    user=None,
    filters: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Freeze the training data, create a QUEUED run and (after commit) queue it on ``training``.

    Invalid hyperparameters, unknown filters or an empty dataset are refused (``ActionRefused``)
    before anything is written or queued.
    """




    if kind not in TrainingRun.Kind.values:
        raise ActionRefused(f"Unknown training kind {kind!r}; use sft or dpo.")
    hyperparameters = {k: v for k, v in (hyperparameters or {}).items() if v is not None}
    directory = f"{kind}-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    store = Path(settings.MODEL_STORE)
    try:
        data_filters = DataFilters.from_dict(filters)
        build_config(kind, hyperparameters, parent_dir=parent.path, output_dir=store / directory)
    except (TypeError, ValueError) as exc:
        raise ActionRefused(f"Invalid training settings: {exc}") from exc
    data = sft_data(data_filters) if kind == "sft" else dpo_data(data_filters, parent=parent)
    records = data.records
    if not records:
        what = "approved preference pairs" if kind == "dpo" else "prompts with references or approved gold rewrites"
        hint = ""
        if kind == "dpo" and not data_filters.any_version and dpo_data(
            DataFilters.from_dict({**data_filters.as_dict(), "any_version": True})
        ).records:
            hint = f" Only pairs sampled from {parent.name} are used by default; any_version widens this."
        raise ActionRefused(f"No training data: no {what} match these filters.{hint}")
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=kind,
            parent=parent,
            created_by=user,
            hyperparameters=hyperparameters,
            data_filters=data_filters.as_dict(),
            data_snapshot=snapshot_summary(records, data.cleaning),
            output_directory=directory,
        )
        run.snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(run.snapshot_path, records)
        if enqueue:
            job_id = f"training-run-{run.pk}"
            TrainingRun.objects.filter(pk=run.pk).update(rq_job_id=job_id)
            queues.enqueue_on_commit(
                "training", "training.jobs.run_training", run.pk, job_id=job_id, job_timeout=settings.TRAINING_JOB_TIMEOUT
            )
    run.refresh_from_db()
    return run


def cancel_training_run(*, run: TrainingRun, user=None) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop at its next step."""


    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            raise ActionRefused(f"Run {locked.pk} already finished ({locked.status}).", 409)
        if locked.status == TrainingRun.Status.QUEUED:
            locked.status, locked.finished_at = TrainingRun.Status.CANCELLED, timezone.now()
            locked.error = f"Cancelled before it started{f' by {user}' if user else ''}."
        locked.cancel_requested = True
        locked.save(update_fields=["status", "finished_at", "error", "cancel_requested"])
    return locked


def _process_alive(pid: int) -> bool:

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs() -> list[int]:
    """Mark RUNNING runs whose worker died (SIGKILL, OOM, reboot) as FAILED and remove partial output.

    A run is dead when its worker process on this host is gone, or when its heartbeat is older
    than ``TRAINING_HEARTBEAT_TIMEOUT``. Dead runs are never re-run.
    """




    host = socket.gethostname()
    stale_before = timezone.now() - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    reaped = []
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING):
        same_host_dead = run.worker_host == host and run.worker_pid and not _process_alive(run.worker_pid)
        silent = run.heartbeat_at is not None and run.heartbeat_at < stale_before
        if not (same_host_dead or silent):
            continue
        updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED,
            finished_at=timezone.now(),
            error="The worker running this run died (killed or crashed); partial output was removed.",
        )
        if updated:
            remove_stale_temporaries(Path(settings.MODEL_STORE), prefix=run.output_directory)
            reaped.append(run.pk)
    return reaped
