"""manage.py bootstrap: what a fresh platform needs before it serves anyone (idempotent)."""
from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from annotations.models import Prompt

DEMO_PROMPTS = Path(__file__).resolve().parents[2] / "demo" / "demo_prompts.jsonl"


class Command(BaseCommand):
    help = (
        "Register the base model and, if the pool is empty, import prompts (demo set or --prompts PATH); "
        "--first-sft also queues the first SFT when it applies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--prompts", help="A prompt file to import instead of the demo set.")
        parser.add_argument("--format", default="paradetox")
        parser.add_argument(
            "--first-sft", "--bootstrap", action="store_true", dest="first_sft",
            help="Queue the first SFT from the base model on the imported references (whatever AUTO_FIRST_SFT says); "
            "says why not when it does not apply.",
        )

    def handle(self, *args, prompts=None, format="paradetox", first_sft=False, **options):
        call_command("register_base_model", stdout=self.stdout, stderr=self.stderr)
        if prompts:
            call_command("import_prompts", prompts, format=format, stdout=self.stdout, stderr=self.stderr)
        elif not Prompt.objects.exists():
            call_command("import_prompts", str(DEMO_PROMPTS), format="jsonl", source="demo", stdout=self.stdout)
        if first_sft:
            try:
                call_command("train_first_model", stdout=self.stdout, stderr=self.stderr)
            except CommandError as exc:  # already trained or queued: bootstrap stays idempotent
                self.stdout.write(str(exc))
