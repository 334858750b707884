"""manage.py refill_pool [--now]: queue (or run here) generation of ready items for the active version."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training import generation
from training.models import ModelVersion


class Command(BaseCommand):
    help = "Fill the pool of ready annotation items for the active model version."

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="Generate in this process instead of queueing.")
        parser.add_argument("--target", type=int, help="Ready items wanted (default POOL_TARGET).")

    def handle(self, *args, now=False, target=None, **options):
        version = ModelVersion.objects.active()
        if version is None:
            raise CommandError("No active model version: run `manage.py register_base_model` first.")
        if now:
            created = generation.refill_pool(version.pk, target=target)
            self.stdout.write(self.style.SUCCESS(f"{created} item(s) generated for {version.name}."))
        elif generation.request_refill(version):
            self.stdout.write(f"refill of {version.name}'s pool queued on 'generation'.")
        else:
            self.stdout.write(f"{version.name}'s pool is full or a refill is already queued.")
