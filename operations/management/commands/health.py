"""manage.py health: the /health/ checks from the command line (exit status 1 when any fails)."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from operations.health import check_health


class Command(BaseCommand):
    help = "Check the database, Redis, RQ workers per queue, the model store and the active version."

    def handle(self, *args, **options):
        report = check_health()
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
        if not report.ok:
            raise CommandError(f"unhealthy: {', '.join(report.failed)}")
