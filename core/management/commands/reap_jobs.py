"""manage.py reap_jobs [--every SECONDS]: mark jobs whose worker died as failed (once, or on a schedule)."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from core.jobs import reap_all


class Command(BaseCommand):
    help = "Mark running training runs, evaluations and arena generations whose worker died as failed."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, help="Keep reaping every SECONDS (a supervised process).")

    def handle(self, *args, every=None, **options):
        while True:
            for name, ids in reap_all().items():
                self.stdout.write(f"reaped {name}: {', '.join(map(str, ids))}")
            if not every:
                return
            close_old_connections()
            time.sleep(every)
