"""The model store and the database agree: every checkpoint directory is a registered version (or the
output of a run still going), every version's directory exists, no half-written directory lingers.

A worker killed between renaming a finished checkpoint into place and committing its version leaves
an orphan directory; one killed while writing leaves a ``.tmp-*`` directory. ``find_problems`` lists
them; ``repair`` moves orphans aside into ``MODEL_STORE/.orphans/`` (weights are never deleted) and
removes temporaries of jobs that are no longer running.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from .models import ModelVersion, TrainingRun

ORPHANS = ".orphans"


@dataclass
class StoreReport:
    orphan_directories: list[str] = field(default_factory=list)  # checkpoints no version points to
    stale_temporaries: list[str] = field(default_factory=list)  # .tmp-* of jobs no longer running
    missing_directories: list[str] = field(default_factory=list)  # versions whose checkpoint is gone

    @property
    def consistent(self) -> bool:
        return not (self.orphan_directories or self.stale_temporaries or self.missing_directories)


def find_problems() -> StoreReport:
    store = Path(settings.MODEL_STORE)
    registered = set(ModelVersion.objects.values_list("directory", flat=True))
    in_progress = set(TrainingRun.objects.unfinished().values_list("output_directory", flat=True))
    report = StoreReport()
    for path in sorted(store.iterdir()) if store.exists() else []:
        if not path.is_dir():
            continue
        if path.name.startswith(".tmp-"):
            if not any(path.name.startswith(f".tmp-{name}-") for name in in_progress):
                report.stale_temporaries.append(path.name)
        elif not path.name.startswith(".") and path.name not in registered | in_progress:
            report.orphan_directories.append(path.name)
    report.missing_directories = sorted(d for d in registered if not (store / d).is_dir())
    return report


def repair(report: StoreReport) -> None:
    """Move orphan checkpoints to ``.orphans/`` (a person decides later) and delete stale temporaries."""
    store = Path(settings.MODEL_STORE)
    for name in report.orphan_directories:
        (store / ORPHANS).mkdir(exist_ok=True)
        shutil.move(str(store / name), str(store / ORPHANS / name))
    for name in report.stale_temporaries:
        shutil.rmtree(store / name, ignore_errors=True)
