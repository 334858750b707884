"""Model-store retention: free the weights of versions nobody will serve or train from again.

Weights are the only large part of a checkpoint (a few hundred MB each, plus the CTranslate2 copy
the generation worker converts beside them); lineage, metrics, ``version.json``, the tokenizer,
the data snapshot and the database row stay forever, so a pruned version can still be read,
compared and retrained. A version is pruned only when it was never activated, is not the active
version or an ancestor of it, is not among the ``keep_recent`` newest, is not the parent of a
queued or running training run, is not in use by a higher app (``hooks.RETENTION_KEEP``: the
arena's open comparisons), and is no ancestor of any version kept for those reasons.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from core import hooks

from .models import ModelVersion, TrainingRun, VersionActivation

# Files and directories holding weights; everything else in a checkpoint (config, tokenizer,
# version.json, data.jsonl) is small and kept.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
WEIGHT_DIR_PREFIXES = ("ct2-", ".tmp-ct2-", "checkpoint-")
KEPT_FILES = ("training_args.bin",)  # the trainer's settings, not weights
DEFAULT_KEEP_RECENT = 3
PRUNED_EARLIER = "pruned earlier"


def weight_paths(directory: Path) -> list[Path]:
    """The weight files and weight directories (CTranslate2 copies, trainer checkpoints) of one checkpoint."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if path.is_dir() and path.name.startswith(WEIGHT_DIR_PREFIXES):
            found.append(path)
        elif path.is_file() and path.name.endswith(WEIGHT_SUFFIXES) and path.name not in KEPT_FILES:
            found.append(path)
    return found


def size_of(path: Path) -> int:
    """Bytes on disk of a file or a whole directory tree (symlinks not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


@dataclass
class VersionSpace:
    """One version's directory: its size now, what pruning frees, and why it is kept (if it is)."""

    version: ModelVersion
    bytes_before: int
    bytes_freed: int
    kept_because: str = ""  # empty: prunable

    @property
    def bytes_after(self) -> int:
        return self.bytes_before - (0 if self.kept_because else self.bytes_freed)

    @property
    def prunable(self) -> bool:
        return not self.kept_because and self.bytes_freed > 0


@dataclass
class PruneReport:
    versions: list[VersionSpace] = field(default_factory=list)
    dry_run: bool = True

    @property
    def pruned(self) -> list[VersionSpace]:
        return [v for v in self.versions if v.prunable]

    @property
    def bytes_before(self) -> int:
        return sum(v.bytes_before for v in self.versions)

    @property
    def bytes_freed(self) -> int:
        return sum(v.bytes_freed for v in self.pruned)

    @property
    def bytes_after(self) -> int:
        return self.bytes_before - self.bytes_freed


def keep_reasons(keep_recent: int) -> dict[int, str]:
    """Version id → why its weights stay; versions missing from the result may be pruned."""
    versions = {v.pk: v for v in ModelVersion.objects.all()}
    reasons: dict[int, str] = {}
    for pk in VersionActivation.objects.values_list("version_id", flat=True):
        reasons.setdefault(pk, "was activated")
    for v in versions.values():
        if v.is_active:
            reasons[v.pk] = "active"
        elif v.kind == ModelVersion.Kind.BASE:
            reasons.setdefault(v.pk, "base model (lineage root)")
    for pk in TrainingRun.objects.unfinished().values_list("parent_id", flat=True):
        reasons.setdefault(pk, "parent of a queued or running training run")
    for answer in hooks.announce(hooks.RETENTION_KEEP):  # e.g. the arena's open comparisons
        for pk, why in (answer or {}).items():
            reasons.setdefault(pk, why)
    recent = sorted(versions.values(), key=lambda v: (v.created_at, v.pk), reverse=True)[: max(0, keep_recent)]
    for v in recent:
        reasons.setdefault(v.pk, f"among the {keep_recent} newest")
    # Close over lineage: every ancestor of a kept version is kept (the parent of anything kept).
    for pk in list(reasons):
        node = versions[pk].parent_id
        while node is not None and node in versions:
            reasons.setdefault(node, f"ancestor of {versions[pk].name}")
            node = versions[node].parent_id
    return reasons


def plan_pruning(*, keep_recent: int = DEFAULT_KEEP_RECENT) -> PruneReport:
    """Every version with its bytes now and what pruning would free; nothing is changed."""
    if keep_recent < 0:
        raise ValueError(f"keep_recent must be 0 or more, got {keep_recent}")
    reasons = keep_reasons(keep_recent)
    report = PruneReport()
    for v in ModelVersion.objects.order_by("created_at", "id"):
        freed = sum(size_of(p) for p in weight_paths(v.path))
        reason = PRUNED_EARLIER if v.is_pruned else reasons.get(v.pk, "")
        report.versions.append(VersionSpace(v, bytes_before=size_of(v.path) if v.path.exists() else 0, bytes_freed=freed, kept_because=reason))
    return report


def prune_versions(*, dry_run: bool = False, keep_recent: int = DEFAULT_KEEP_RECENT) -> PruneReport:
    """Remove the weights of every prunable version (see the module docstring) and mark it pruned.

    Each version is re-checked under a row lock before it is marked, so an activation racing with
    the prune either wins (the version is then kept) or is refused afterwards by ``refuse_if_pruned``.
    Files are deleted only after the mark is committed: a crash in between leaves a version marked
    pruned with some weights left over, never an activatable version without weights.
    """
    report = plan_pruning(keep_recent=keep_recent)
    report.dry_run = dry_run
    if dry_run:
        return report
    for space in report.pruned:
        with transaction.atomic():
            locked = ModelVersion.objects.select_for_update().get(pk=space.version.pk)
            if locked.is_active or locked.is_pruned or locked.activations.exists() or locked.pk in keep_reasons(keep_recent):
                space.kept_because = "changed while pruning"
                continue
            locked.pruned_at = timezone.now()
            locked.pruned_bytes = space.bytes_freed
            locked.save(update_fields=["pruned_at", "pruned_bytes"])
        for path in weight_paths(locked.path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        space.version = locked
    return report
