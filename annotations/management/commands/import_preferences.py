"""manage.py import_preferences FILE --format detoxifierai [--model-version NAME] [--importer USER]."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.detoxifierai import DEFAULT_IMPORTER, FORMAT, PreferenceFileError, import_preferences, read_preferences
from annotations.importers import skipped_lines
from annotations.models import MODEL_VERSION_MODEL, active_model_version


class Command(BaseCommand):
    help = (
        "Import best-of-N choices (DetoxifierAI's user_preferences.json) as prompts, imported candidates, "
        "judgements and pending preference pairs; re-import never duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The preferences file.")
        parser.add_argument("--format", choices=(FORMAT,), default=FORMAT)
        parser.add_argument("--model-version", help="Model version the choices were sampled from (default: the active one).")
        parser.add_argument("--importer", default=DEFAULT_IMPORTER, help="User the imported judgements belong to.")

    def handle(self, *args, path, format=FORMAT, model_version=None, importer=DEFAULT_IMPORTER, **options):
        from django.apps import apps

        versions = apps.get_model(MODEL_VERSION_MODEL).objects
        version = versions.filter(name=model_version).first() if model_version else active_model_version()
        if version is None:
            raise CommandError(
                f"No such version: {model_version}" if model_version else "No active model version: register one first (manage.py register_base_model)."
            )
        try:
            report = import_preferences(read_preferences(path), version=version, importer=importer)
        except (OSError, PreferenceFileError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        for line in skipped_lines(report.errors, what="entries"):
            self.stderr.write(line)
        summary = (
            f"{report.entries} new entr{'y' if report.entries == 1 else 'ies'} ({report.pairs_created} pending pair(s), "
            f"{report.prompts_created} new prompt(s), {report.heldout} on held-out prompts), "
            f"{report.already_present} already present, {len(report.errors)} malformed skipped; "
            f"sampled from {version.name}, judged by {importer}."
        )
        if report.valid == 0:
            raise CommandError(f"No valid entries in {path}. {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
