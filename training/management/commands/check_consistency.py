"""manage.py check_consistency [--repair]: do the model store and the database agree?"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.consistency import find_problems, repair


class Command(BaseCommand):
    help = "List checkpoint directories without a version, half-written ones, and versions without a directory."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Move orphans to MODEL_STORE/.orphans/, delete temporaries.")

    def handle(self, *args, **options):
        report = find_problems()
        for label, names in (
            ("orphan checkpoint directory (no version)", report.orphan_directories),
            ("stale temporary directory", report.stale_temporaries),
            ("version whose directory is missing", report.missing_directories),
        ):
            for name in names:
                self.stdout.write(f"{label}: {name}")
        if report.consistent:
            self.stdout.write(self.style.SUCCESS("The model store and the database agree."))
            return
        if not options["repair"]:
            raise CommandError("Inconsistencies found; run with --repair to move orphans aside and remove temporaries.")
        repair(report)
        self.stdout.write(self.style.SUCCESS("Repaired: orphans moved to .orphans/, temporaries removed."))
        if report.missing_directories:
            raise CommandError("Versions whose directory is missing need a person: restore the checkpoint from a backup.")
