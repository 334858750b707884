"""manage.py register_base_model [--source bundled|PATH|HUB_ID] [--prompt-prefix TEXT]: convert once, register,
activate if first."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.ml.checkpoints import CheckpointError
from training.services import ensure_base_version


class Command(BaseCommand):
    help = "Convert the base model (default: BASE_MODEL, the bundled SmolLM2) into the model store and register it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--source", help="'bundled', a .gguf file, a local checkpoint directory (causal or T5-style) or a hub id."
        )
        parser.add_argument(
            "--prompt-prefix",
            help="Encoder-decoder models: the input prefix the model was fine-tuned with (default 'detoxify: '; '' for none).",
        )

    def handle(self, *args, source=None, prompt_prefix=None, **options):
        try:
            version = ensure_base_version(source=source, prompt_prefix=prompt_prefix)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"base version {version.name} ready at {version.path}"
                                             f"{' (active)' if version.is_active else ''}"))
