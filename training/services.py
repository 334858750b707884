"""Model-version actions: register the base model, register a trained checkpoint, activate/roll back."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from training.ml.checkpoints import BUNDLED, prepare_base_checkpoint, read_version_file

from .models import ModelVersion, VersionActivation

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


def activate_version(*, version: ModelVersion, user=None, reason: str = "") -> VersionActivation:
    """Make ``version`` the one annotators get candidates from; the change is logged for rollback.

    Generation workers read the active version per job, so they switch without a restart; the
    new version's pool is refilled after commit.
    """
    from annotations import pool

    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(is_active=True).first()
        if current is not None and current.pk != version.pk:
            ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
        version.is_active = True
        activation = VersionActivation.objects.create(version=version, previous=current, activated_by=user, reason=reason)
        transaction.on_commit(lambda: pool.request_refill(version))
    return activation
