"""manage.py prune_versions [--dry-run] [--keep-recent N]: free the weights of versions never used."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.retention import DEFAULT_KEEP_RECENT, PRUNED_EARLIER, plan_pruning, prune_versions


def megabytes(n: int) -> str:
    """Megabytes for checkpoints, exact bytes for the small remainders a pruned version keeps."""
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} B"


class Command(BaseCommand):
    help = (
        "Remove the weights (and CTranslate2 copy) of versions that were never activated and that nothing kept "
        "descends from; lineage, metrics, version.json, data snapshot and the database row stay."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be freed; change nothing.")
        parser.add_argument(
            "--keep-recent", type=int, default=DEFAULT_KEEP_RECENT, metavar="N",
            help=f"Always keep the N newest versions (default {DEFAULT_KEEP_RECENT}).",
        )

    def handle(self, *args, **options):
        if options["keep_recent"] < 0:
            raise CommandError("--keep-recent must be 0 or more.")
        dry_run = options["dry_run"]
        report = plan_pruning(keep_recent=options["keep_recent"]) if dry_run else prune_versions(keep_recent=options["keep_recent"])
        verb = "would free" if dry_run else "freed"
        for space in report.versions:
            state = space.kept_because if space.kept_because == PRUNED_EARLIER else f"kept ({space.kept_because})" if space.kept_because else (f"{verb} {megabytes(space.bytes_freed)}" if space.bytes_freed else "no weights left")
            self.stdout.write(
                f"{space.version.name}: {megabytes(space.bytes_before)} before, {megabytes(space.bytes_after)} after — {state}"
            )
        self.stdout.write(
            f"Total: {megabytes(report.bytes_before)} before, {megabytes(report.bytes_after)} after; "
            f"{len(report.pruned)} version(s) {'would be ' if dry_run else ''}pruned, {megabytes(report.bytes_freed)} {'to free' if dry_run else 'freed'}."
        )
