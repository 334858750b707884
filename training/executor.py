"""Running one training run in this process: claim the row, train, register the version, record the end.

The RQ job (``training.jobs.run_training``) and ``manage.py train`` both call ``execute_run``, so a
run behaves the same from the web page, the API and the CLI.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import traceback as tb
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from core import hooks, jobs
from training.ml.checkpoints import read_version_file
from training.ml.data import read_jsonl
from training.ml.device import pick_device
from training.ml.dpo import DPORunConfig
from training.ml.hyperparameters import first_sft_hyperparameters
from training.ml.runs import ProgressUpdate, TrainingCancelled
from training.ml.sft import SFTRunConfig

from .datasets import finish_sft_cleaning
from .models import TRAINING_JOBS, ModelVersion, TrainingRun

logger = logging.getLogger(__name__)
CONFIGS = {"sft": SFTRunConfig, "dpo": DPORunConfig}
LOG_TAIL_LINES = 40


def build_config(kind: str, hyperparameters: dict[str, Any], *, parent_dir: Path, output_dir: Path):
    """The ML config for ``kind``; unknown or invalid hyperparameters raise ``ValueError``."""
    config_class = CONFIGS[kind]
    allowed = {f.name for f in dataclasses.fields(config_class)} - {"parent_dir", "output_dir"}
    unknown = set(hyperparameters) - allowed
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) for {kind}: {', '.join(sorted(unknown))}")
    cfg = config_class(parent_dir=str(parent_dir), output_dir=str(output_dir), **hyperparameters)
    cfg.validate()
    return cfg


class ProgressReporter:
    """Writes progress to the run's row (throttled) and answers "was cancel requested?" from the DB."""

    def __init__(self, run_id: int, *, every_s: float = 1.0, echo: Callable[[ProgressUpdate], None] | None = None):
        self.run_id = run_id
        self.every_s = every_s
        self.echo = echo
        self.last_write = 0.0
        self.cancelled = False

    def __call__(self, update: ProgressUpdate) -> None:
        if self.echo:
            self.echo(update)
        logged_loss = "loss" in update.logs
        now = time.monotonic()
        if not logged_loss and now - self.last_write < self.every_s:
            return
        self.last_write = now
        fields: dict[str, Any] = dict(
            step=update.step, total_steps=update.total_steps, eta_seconds=update.eta_s, heartbeat_at=timezone.now()
        )
        if update.loss is not None:
            fields["loss"] = update.loss
        try:
            self._write(update, fields, logged_loss)
        except DatabaseError:  # a database hiccup must not kill hours of training
            logger.warning("could not record progress of run %s", self.run_id, exc_info=True)

    def _write(self, update: ProgressUpdate, fields: dict[str, Any], logged_loss: bool) -> None:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=self.run_id)
            for name, value in fields.items():
                setattr(run, name, value)
            if logged_loss:
                run.loss_history = run.loss_history + [[update.step, round(float(update.logs["loss"]), 5)]]
                line = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in update.logs.items())
                run.log_tail = "\n".join((run.log_tail.splitlines() + [f"step {update.step}: {line}"])[-LOG_TAIL_LINES:])
            run.save(update_fields=[*fields, "loss_history", "log_tail"])

    def should_cancel(self) -> bool:
        # Asked once per optimizer step: one indexed EXISTS is cheap next to a step, and a time
        # throttle would let a fast run finish (and register) after the user pressed cancel.
        if not self.cancelled:
            self.cancelled = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        return self.cancelled


class NoLongerRunning(Exception):
    """The run was reaped or cancelled while it trained; its checkpoint must not be registered."""


def execute_run(run_id: int, *, echo: Callable[[ProgressUpdate], None] | None = None) -> TrainingRun:
    """Train a queued run here and register its checkpoint as a new, inactive model version.

    Never raises for a training failure: the row records FAILED with the traceback, CANCELLED,
    or SUCCEEDED with ``result_version``. The active version and all annotations are untouched.
    A heartbeat thread keeps the row alive while the model loads, trains and saves.
    """
    jobs.reap_all()
    device = pick_device()
    if not TRAINING_JOBS.claim(run_id, device=device.label):
        return TrainingRun.objects.get(pk=run_id)
    run = TrainingRun.objects.select_related("parent").get(pk=run_id)
    if run.is_first_sft:
        # Only the worker knows its device (the web process never imports torch): on a GPU the
        # first SFT trains on every reference instead of the CPU quick path's sample.
        run.hyperparameters = first_sft_hyperparameters(on_gpu=device.device != "cpu")
        run.save(update_fields=["hyperparameters"])
    output_dir = Path(settings.MODEL_STORE) / run.output_directory
    reporter = ProgressReporter(run_id, echo=echo)
    with TRAINING_JOBS.heartbeat(run_id):
        try:
            result = _train(run, output_dir, reporter)
        except TrainingCancelled as exc:
            TRAINING_JOBS.finish(run_id, status=TrainingRun.Status.CANCELLED, error=str(exc))
            return TrainingRun.objects.get(pk=run_id)
        except Exception as exc:  # recorded on the row; the worker stays up for the next run
            logger.exception("training run %s failed", run_id)
            TRAINING_JOBS.fail(run_id, exc)
            return TrainingRun.objects.get(pk=run_id)
    try:
        _register(run, output_dir, result)
    except Exception as exc:
        shutil.rmtree(output_dir, ignore_errors=True)  # nothing half-registered
        if not isinstance(exc, NoLongerRunning):
            TRAINING_JOBS.fail(run_id, f"registration failed: {exc}", traceback=tb.format_exc())
    return TrainingRun.objects.get(pk=run_id)


def _train(run: TrainingRun, output_dir: Path, reporter: ProgressReporter) -> Any:
    from training.ml.dpo import run_dpo
    from training.ml.sft import run_sft

    cfg = build_config(run.kind, run.hyperparameters, parent_dir=run.parent.path, output_dir=output_dir)
    if run.kind == TrainingRun.Kind.SFT:
        finish_sft_cleaning(run)  # the version registered below records the cleaned snapshot
    records = read_jsonl(run.snapshot_path)
    meta = {
        "name": run.output_directory,
        "parent": run.parent.name,
        "parent_directory": run.parent.directory,
        "training_run": run.pk,
        "data_filters": run.data_filters,
        "data_snapshot": run.data_snapshot,
    }
    runner = {"sft": run_sft, "dpo": run_dpo}[run.kind]
    return runner(cfg, records, meta=meta, on_progress=reporter, should_cancel=reporter.should_cancel)


def _register(run: TrainingRun, output_dir: Path, result: Any) -> ModelVersion:
    """Register the renamed checkpoint and mark the run SUCCEEDED in one transaction — only if the row
    is still RUNNING (a reaped or cancelled run never comes back as succeeded)."""
    meta = read_version_file(output_dir)
    with transaction.atomic():
        if not TrainingRun.objects.select_for_update().filter(pk=run.pk, status=TrainingRun.Status.RUNNING).exists():
            raise NoLongerRunning(f"run {run.pk} is no longer running")
        version = ModelVersion.objects.create(
            name=run.output_directory,
            directory=run.output_directory,
            kind=run.kind,
            parent=run.parent,
            source=run.parent.source,
            hyperparameters=meta.get("hyperparameters", {}),
            metrics=result.metrics,
            data_snapshot=run.data_snapshot,
            library_versions=meta.get("library_versions", {}),
            device=result.device,
            notes=f"Trained by run {run.pk} ({run.kind}) from {run.parent.name}.",
        )
        TRAINING_JOBS.finish(
            run.pk,
            result_version=version,
            metrics=result.metrics,
            device=result.device,
            step=result.steps,
            total_steps=result.total_steps,
            eta_seconds=0,
        )
        transaction.on_commit(lambda: hooks.announce(hooks.VERSION_REGISTERED, version_id=version.pk))
    return version
