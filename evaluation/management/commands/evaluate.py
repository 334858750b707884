"""manage.py evaluate VERSION [--sample-size N] [--seed S] [--queue]: score a version on held-out prompts."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.actions import ActionRefused
from evaluation.models import Evaluation
from evaluation.services import queue_evaluation, run_evaluation
from training.models import ModelVersion


class Command(BaseCommand):
    help = "Evaluate a model version (STA, SIM, FL, chrF, J) on the held-out split with greedy decoding."

    def add_arguments(self, parser):
        parser.add_argument("version", help="Version name (or 'active').")
        parser.add_argument("--sample-size", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--queue", action="store_true", help="Queue it for the evaluation worker.")

    def handle(self, *args, version, sample_size=None, seed=None, queue=False, **options):
        target = ModelVersion.objects.active() if version == "active" else ModelVersion.objects.filter(name=version).first()
        if target is None:
            raise CommandError(f"No such version: {version}")
        try:
            evaluation = queue_evaluation(version=target, sample_size=sample_size, seed=seed, enqueue=queue)
        except ActionRefused as exc:
            raise CommandError(exc.message) from exc
        if queue:
            self.stdout.write(self.style.SUCCESS(f"evaluation {evaluation.pk} of {target.name} queued"))
            return
        self.stdout.write(f"evaluating {target.name} on {evaluation.sample_size} held-out sentences (greedy)...")
        evaluation = run_evaluation(evaluation.pk)
        if evaluation.status != Evaluation.Status.SUCCEEDED:
            raise CommandError(f"evaluation failed: {evaluation.error}")
        m = evaluation.metrics
        self.stdout.write(self.style.SUCCESS(
            f"{target.name}: n={m['n']} STA={m['sta']:.3f} SIM={m['sim']:.3f} FL={m['fl']:.3f} "
            f"chrF={m['chrf']:.3f} J={m['j']:.3f}"
        ))
