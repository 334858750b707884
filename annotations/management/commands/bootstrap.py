"""manage.py bootstrap: what a fresh platform needs before it serves anyone (idempotent)."""
from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotations.models import Prompt

DEMO_PROMPTS = Path(__file__).resolve().parents[2] / "demo" / "demo_prompts.jsonl"


class Command(BaseCommand):
    help = "Register the base model and, if the pool is empty, import prompts (demo set or --prompts PATH)."

    def add_arguments(self, parser):
        parser.add_argument("--prompts", help="A prompt file to import instead of the demo set.")
        parser.add_argument("--format", default="paradetox")

    def handle(self, *args, prompts=None, format="paradetox", **options):
        call_command("register_base_model", stdout=self.stdout, stderr=self.stderr)
        if prompts:
            call_command("import_prompts", prompts, format=format, stdout=self.stdout, stderr=self.stderr)
        elif not Prompt.objects.exists():
            call_command("import_prompts", str(DEMO_PROMPTS), format="jsonl", source="demo", stdout=self.stdout)
