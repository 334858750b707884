"""Model-version and training-run actions: register the base model, activate/roll back, start (the first SFT
included), cancel, retry and reap runs."""
from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import hooks
from annotations.records import reference_prompts
from core.actions import ActionRefused
from training.ml.checkpoints import BUNDLED, prepare_base_checkpoint
from training.ml.data import write_jsonl
from training.ml.hyperparameters import first_sft_hyperparameters

from . import generation
from .datasets import DataFilters, dpo_data, sft_data, snapshot_summary
from .executor import build_config
from .models import TRAINING_JOBS, ModelVersion, TrainingRun, VersionActivation

BUNDLED_NAME = "smollm2-135m-instruct"
logger = logging.getLogger(__name__)


def base_directory_name(source: str) -> str:
    if source == BUNDLED:
        return f"base-{BUNDLED_NAME}"
    return "base-" + re.sub(r"[^a-z0-9]+", "-", Path(source).name.lower()).strip("-")


def ensure_base_version(
    *, source: str | None = None, activate_if_none: bool = True, prompt_prefix: str | None = None
) -> ModelVersion:
    """Convert ``BASE_MODEL`` into the store once and register it as a version (idempotent).

    It becomes active if no version is active yet, so a fresh platform can serve candidates at once.
    ``prompt_prefix``: the input prefix an encoder-decoder model was fine-tuned with (default "detoxify: ").
    """
    source = source or settings.BASE_MODEL
    directory = base_directory_name(source)
    version = ModelVersion.objects.filter(directory=directory).first()
    if version is None:
        meta = prepare_base_checkpoint(
            source, Path(settings.MODEL_STORE) / directory, name=directory, prompt_prefix=prompt_prefix
        )
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
        transaction.on_commit(lambda: hooks.announce(hooks.VERSION_REGISTERED, version_id=version.pk))
    if activate_if_none and not ModelVersion.objects.filter(is_active=True).exists():
        activate_version(version=version, user=None, reason="first version")
    return version


def activate_version(*, version: ModelVersion, user=None, reason: str = "", override: bool = False) -> VersionActivation:
    """Make ``version`` the one annotators get candidates from; the change is logged for rollback.

    The promotion gate (``hooks.PROMOTION_CHECK``, answered by evaluation) refuses a version whose J
    drops significantly against the active version's on the same prompts, whose similarity is too
    low, or that cannot be compared with the active one, unless staff ``override`` it with a
    ``reason``. The returned activation carries the gate's ``warning`` (e.g. ΔJ within noise; not
    stored). Generation workers read the active version per job, so they switch without a restart;
    the new version's pool is refilled after commit.
    """
    with transaction.atomic():
        # Locked so a concurrent prune_versions either sees the activation or is seen here.
        ModelVersion.objects.select_for_update().get(pk=version.pk).refuse_if_pruned("activated")
        current = ModelVersion.objects.select_for_update().filter(is_active=True).first()
        checks = [c for c in hooks.announce(hooks.PROMOTION_CHECK, candidate=version, active=current) if c is not None]
        problem = next((c.problem for c in checks if c.problem), None)
        if problem and not (override and reason.strip()):
            raise ActionRefused(problem, 409)
        if current is not None and current.pk != version.pk:
            ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
        version.is_active = True
        activation = VersionActivation.objects.create(
            version=version, previous=current, activated_by=user, reason=reason, overridden=bool(problem)
        )
        transaction.on_commit(lambda: generation.request_refill(version))
    activation.warning = " ".join(c.warning for c in checks if c.warning) or None
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
    first_sft: bool = False,
) -> TrainingRun:
    """Freeze the training data, create a QUEUED run and (after commit) queue it on ``training``.

    Invalid hyperparameters, unknown filters or an empty dataset are refused (``ActionRefused``)
    before anything is written or queued.
    """
    if kind not in TrainingRun.Kind.values:
        raise ActionRefused(f"Unknown training kind {kind!r}; use sft or dpo.")
    ModelVersion.objects.get(pk=parent.pk).refuse_if_pruned("used as a parent")
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
            is_first_sft=first_sft,
        )
        run.snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(run.snapshot_path, records)
        if enqueue:
            TRAINING_JOBS.enqueue_on_commit(run.pk)
    run.refresh_from_db()
    return run


# --- the first model -------------------------------------------------------------------------------


def first_sft_parent() -> ModelVersion | None:
    """The base version the first SFT starts from: the active one if it is a base model, else the oldest base."""
    active = ModelVersion.objects.active()
    if active is not None and active.kind == ModelVersion.Kind.BASE:
        return active
    return ModelVersion.objects.filter(kind=ModelVersion.Kind.BASE).order_by("id").first()


def first_sft_refusal() -> str | None:
    """Why the first SFT is not offered now, or None when it is: a base version exists, nothing was
    trained from it, no SFT run is queued, running or done, and human references are imported."""
    busy = TrainingRun.objects.filter(kind=TrainingRun.Kind.SFT).unfinished_or_succeeded().order_by("id").first()
    if busy is not None:
        return f"SFT run {busy.pk} is already {busy.status}; the first model needs no other."
    trained = ModelVersion.objects.filter(parent__isnull=False).order_by("id").first()
    if trained is not None:
        return f"A trained version ({trained.name}) already exists; start further runs on the training page."
    if first_sft_parent() is None:
        return "No base model is registered yet: run manage.py register_base_model."
    if not reference_prompts().exists():
        return "No human references are imported yet: import ParaDetox first (manage.py import_prompts)."
    return None


def start_first_sft(*, user=None, enqueue: bool = True) -> TrainingRun:
    """Queue the first SFT from the base version on the imported references (gold rewrites left out).

    It runs the quick CPU path (800 references, 1 epoch, batch 8) on a CPU and every reference on a
    GPU, as the training worker finds (``FIRST_SFT_ON_*`` in ``training.ml.hyperparameters``); once
    it and its parent are evaluated, evaluation activates it if it beats the parent. Refused (409)
    when it is not applicable (``first_sft_refusal``). The parent row is locked and a partial unique
    constraint backs it up, so two concurrent requests never make two runs.
    """
    with transaction.atomic():
        parent = first_sft_parent()
        if parent is not None:
            ModelVersion.objects.select_for_update().filter(pk=parent.pk).first()
        refusal = first_sft_refusal()
        if refusal:
            raise ActionRefused(refusal, 409)
        try:
            return start_training_run(
                kind=TrainingRun.Kind.SFT,
                parent=parent,
                user=user,
                filters={"include_gold_rewrites": False},
                hyperparameters=first_sft_hyperparameters(on_gpu=False),
                enqueue=enqueue,
                first_sft=True,
            )
        except IntegrityError as exc:
            raise ActionRefused("The first SFT run was started by someone else a moment ago.", 409) from exc


def start_first_sft_after_import() -> list[TrainingRun]:
    """``PROMPTS_IMPORTED`` handler: with ``AUTO_FIRST_SFT`` on, queue the first SFT once enough
    non-held-out prompts have references (``AUTO_FIRST_SFT_MIN_PROMPTS``, so the 40-prompt demo set
    does not train a model). Returns the run queued, if any."""
    if not settings.AUTO_FIRST_SFT or first_sft_refusal() is not None:
        return []
    if reference_prompts().count() < settings.AUTO_FIRST_SFT_MIN_PROMPTS:
        return []
    try:
        return [start_first_sft()]
    except ActionRefused as exc:
        logger.info("no automatic first SFT: %s", exc.message)
        return []


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


def reap_dead_runs() -> list[int]:
    """Mark RUNNING runs whose worker died (SIGKILL, OOM, reboot) as FAILED and remove partial output.

    A run is dead when its worker process on this host is gone, or when its heartbeat (sent from a
    thread every few seconds, also while loading and saving) is older than ``JOB_HEARTBEAT_TIMEOUT``.
    Dead runs are never re-run by the reaper; staff may retry them.
    """
    return TRAINING_JOBS.reap()


def retry_training_run(*, run: TrainingRun, user=None) -> TrainingRun:
    """Queue a failed run again on the same frozen data (e.g. after its worker died or Redis was down)."""
    if not TRAINING_JOBS.retry(run.pk):
        raise ActionRefused(f"Only a failed run can be retried; run {run.pk} is {run.status}.", 409)
    run.refresh_from_db()
    return run
