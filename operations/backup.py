"""A portable backup of users and everything they made: one ``dumpdata`` file that ``loaddata``
restores into a freshly migrated, empty database (any engine).

Users and groups are written by natural key (username, group name) and referred to that way, so
the file loads beside the permissions and content types a fresh ``migrate`` creates; every other
row keeps its primary key. Checkpoint files are not in it: copy ``MODEL_STORE`` alongside.
"""
from __future__ import annotations

import io
from pathlib import Path

from django.apps import apps
from django.core.management import call_command

# Order does not matter to dumpdata (it sorts by dependency); sessions, admin log, content types
# and permissions are left out: a fresh migrate recreates the last two.
BACKUP_LABELS = ("auth.group", "auth.user", "authtoken.token", "training", "annotations", "evaluation", "arena")
SUFFIXES = (".json", ".json.gz", ".json.bz2", ".json.xz")


class BackupError(Exception):
    pass


def backed_up_models() -> list:
    found = []
    for label in BACKUP_LABELS:
        if "." in label:
            found.append(apps.get_model(label))
        else:
            found.extend(apps.get_app_config(label).get_models())
    return found


def write_backup(output: Path | str) -> dict[str, int]:
    """Write the backup to a new file (compressed by its suffix) and return the row count per model."""
    output = Path(output)
    if not output.name.endswith(SUFFIXES):
        raise BackupError(f"{output}: the name must end with one of {', '.join(SUFFIXES)} (loaddata reads the format from it).")
    if output.exists():
        raise BackupError(f"{output} exists; choose a new file name (backups are never overwritten).")
    output.parent.mkdir(parents=True, exist_ok=True)
    call_command(
        "dumpdata", *BACKUP_LABELS, natural_foreign=True, natural_primary=True, output=str(output), stdout=io.StringIO(),
        verbosity=0,
    )
    return {model._meta.label: model._default_manager.count() for model in backed_up_models()}
