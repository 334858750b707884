"""manage.py train_first_model: queue the first SFT from the base model on the imported references."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.actions import ActionRefused
from training import services


class Command(BaseCommand):
    help = (
        "Queue the first SFT (base model, imported human references; 800 of them for 1 epoch on a CPU, all on a GPU) "
        "for the training worker; it is activated once evaluated if it beats the base. Exits 1 saying why when it does not apply."
    )

    def handle(self, *args, **options):
        try:
            run = services.start_first_sft()
        except ActionRefused as exc:
            raise CommandError(f"No first SFT queued: {exc.message}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"Queued the first SFT run {run.pk} from {run.parent.name} on {run.data_snapshot.get('count', 0)} references "
            "(a seeded 800 of them on a CPU worker). Once it and its parent are evaluated it is activated if it beats the parent."
        ))
