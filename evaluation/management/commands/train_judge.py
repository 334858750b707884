"""manage.py train_judge [--max-per-side N]: train the toxicity judge for STA on the imported data."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.actions import ActionRefused
from evaluation import judges


class Command(BaseCommand):
    help = (
        "Train a toxicity judge (logistic regression on MiniLM embeddings + profanity-check's log-odds) on non-held-out prompts vs their "
        "references, print its held-out accuracy next to profanity-check's, and save it in MODEL_STORE/judges/trained/. "
        "EVAL_TOXICITY_CLASSIFIER=trained makes evaluations use it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-per-side", type=int, help="Seeded sample of toxic and of neutral training texts (default 6000).")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, max_per_side=None, seed=0, **options):
        if max_per_side is not None and max_per_side < 1:
            raise CommandError(f"--max-per-side must be at least 1, got {max_per_side}.")
        from training.ml.device import limit_cpu_threads

        limit_cpu_threads()
        try:
            meta = judges.train_toxicity_judge(max_per_side=max_per_side, seed=seed)
        except ActionRefused as exc:
            raise CommandError(exc.message) from exc
        train, heldout = meta["train"], meta["heldout"]
        self.stdout.write(
            f"trained on {train['toxic']} toxic and {train['neutral']} neutral texts in {meta['seconds']} s; "
            f"measured on {heldout['toxic']} held-out toxic texts and {heldout['neutral']} references"
        )
        for name, measured in meta["accuracy"].items():
            self.stdout.write(
                f"{name:>16}: accuracy {judges.describe_accuracy(measured)}; toxic caught {measured['toxic_caught']:.3f}, "
                f"neutral passed {measured['neutral_passed']:.3f}"
            )
        paired = meta["paired"]
        self.stdout.write(
            f"on the same texts only the trained judge was right {paired['only_trained_right']} times, only profanity-check "
            f"{paired['only_profanity_right']} times (exact McNemar p = {paired['mcnemar_p']:.2g})"
        )
        self.stdout.write(self.style.SUCCESS(f"saved to {judges.judge_directory()}"))
