"""manage.py check_services: fail early, with how-to-fix messages, when Redis or the database is down."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.utils import OperationalError

from core.queues import RedisUnavailable, check_redis


class Command(BaseCommand):
    help = "Check that Redis (REDIS_URL) and the database (DATABASE_URL) answer."

    def handle(self, *args, **options):
        try:
            check_redis()
        except RedisUnavailable as exc:
            raise CommandError(str(exc)) from exc
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            raise CommandError(f"Cannot reach the database ({exc}). Check DATABASE_URL.") from exc
        self.stdout.write(self.style.SUCCESS("Redis and the database answer."))
