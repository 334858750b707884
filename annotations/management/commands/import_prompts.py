"""manage.py import_prompts PATH --format paradetox|cannot_rewrite|csv|jsonl  (or --dataset NAME)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.importers import FORMATS, import_prompts, read_hub_dataset, read_prompts, skipped_lines
from core import hooks


class Command(BaseCommand):
    help = "Import toxic prompts (and human references) into the prompt pool; re-import never duplicates."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="File to import.")
        parser.add_argument("--format", choices=FORMATS, default="paradetox")
        parser.add_argument("--dataset", help="Hub dataset name instead of a file (needs network), e.g. s-nlp/paradetox.")
        parser.add_argument("--split", default="train")
        parser.add_argument("--source", help="Source label stored on each prompt (default: the format or dataset).")

    def handle(self, *args, path=None, format="paradetox", dataset=None, split="train", source=None, **options):
        if bool(path) == bool(dataset):
            raise CommandError("Give either a file PATH or --dataset NAME.")
        try:
            rows = read_hub_dataset(dataset, split) if dataset else read_prompts(path, format)
            report = import_prompts(rows, source=source or (f"hub:{dataset}" if dataset else format))
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in skipped_lines(report.errors, what="rows"):
            self.stderr.write(line)
        summary = (
            f"{report.created} new prompt(s), {report.existing} already present "
            f"({report.updated_references} got new references), {report.heldout} new held out for evaluation, "
            f"{len(report.errors)} malformed row(s) skipped."
        )
        if report.valid == 0:
            raise CommandError(f"No valid rows read from {path or dataset}. {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
        # Versions never evaluated (the base model, registered before any references existed) are
        # evaluated once held-out references are here, and training may queue the first SFT
        # (AUTO_FIRST_SFT): the higher apps answer this hook with the job rows they queued.
        queued = [row for answer in hooks.announce(hooks.PROMPTS_IMPORTED) for row in answer or []]
        evaluations = [row for row in queued if hasattr(row, "version")]
        if evaluations:
            names = ", ".join(e.version.name for e in evaluations)
            self.stdout.write(f"queued evaluation of {len(evaluations)} version(s) never evaluated: {names}")
        for run in queued:
            if getattr(run, "is_first_sft", False):
                self.stdout.write(f"queued the first SFT run {run.pk} from {run.parent.name} (AUTO_FIRST_SFT)")
