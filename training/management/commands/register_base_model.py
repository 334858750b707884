"""manage.py register_base_model [--source bundled|PATH|HUB_ID]: convert once, register, activate if first."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.ml.checkpoints import CheckpointError
from training.services import ensure_base_version


class Command(BaseCommand):
    help = "Convert the base model (default: BASE_MODEL, the bundled SmolLM2) into the model store and register it."

    def add_arguments(self, parser):
        parser.add_argument("--source", help="'bundled', a .gguf file, a local checkpoint directory or a hub id.")

    def handle(self, *args, source=None, **options):
        try:
            version = ensure_base_version(source=source)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"base version {version.name} ready at {version.path}"
                                             f"{' (active)' if version.is_active else ''}"))
