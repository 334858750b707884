"""manage.py export OUTPUT_DIR [--what preferences,sft,judgements,detoxifierai] [--status approved|all] [--since DATE]."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.exports import OPTIONAL_PARTS, PARTS, ExportError, export_dataset, parse_since


class Command(BaseCommand):
    help = (
        "Export approved pairs (TRL JSONL + a datasets dataset), gold rewrites (SFT JSONL) and raw "
        "judgements, with a manifest and a dataset card, into a new directory."
    )

    def add_arguments(self, parser):
        parser.add_argument("output_dir", help="A new (or empty) directory; an existing non-empty one is refused.")
        parser.add_argument(
            "--what", default=",".join(PARTS), help=f"Comma-separated parts of {','.join(PARTS + OPTIONAL_PARTS)} (default: {','.join(PARTS)}); "
            "detoxifierai writes user_preferences.json in DetoxifierAI's format.",
        )
        parser.add_argument(
            "--status", choices=("approved", "all"), default="approved",
            help="Pairs in preferences: approved (training data) or all statuses (analysis).",
        )
        parser.add_argument("--since", help="Only pairs and judgements created on or after this ISO date/datetime.")
        parser.add_argument(
            "--include-references", action="store_true",
            help="Add the imported human references of non-held-out prompts to sft.jsonl.",
        )

    def handle(self, *args, output_dir, what, status, since=None, include_references=False, **options):
        parts = [part.strip() for part in what.split(",") if part.strip()]
        try:
            result = export_dataset(
                output_dir, what=parts, status=status, since=parse_since(since), include_references=include_references
            )
        except (ExportError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for name, rows in result.counts.items():
            self.stdout.write(f"{name}: {rows} row(s)")
        self.stdout.write(self.style.SUCCESS(f"Exported to {result.directory} (see README.md and manifest.json)."))
