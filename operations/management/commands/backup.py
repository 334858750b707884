"""manage.py backup OUTPUT.json.gz: users, annotations, reviews, versions, runs, evaluations and the arena."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from operations.backup import BackupError, write_backup


class Command(BaseCommand):
    help = (
        "Write users, groups, tokens and all annotation, review, training, evaluation and arena rows to one "
        "dumpdata file; restore into a freshly migrated empty database with `manage.py loaddata FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("output", help="A new file ending in .json, .json.gz, .json.bz2 or .json.xz.")

    def handle(self, *args, output, **options):
        try:
            counts = write_backup(output)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for label, rows in counts.items():
            self.stdout.write(f"{label}: {rows} row(s)")
        self.stdout.write(self.style.SUCCESS(f"Backup written to {output}; restore with `manage.py loaddata {output}`."))
