"""One collect → review → train → evaluate round through the platform's own services; prints JSON.

    DATABASE_URL=... MODEL_STORE=... python bench/dpo_round.py VERSION [--prompts 50] [--epochs 1]

Run it against a database that holds ParaDetox (e.g. the one ``bench/quick_loop.sh`` leaves in
/tmp/detox-loop). It activates VERSION, fills the pool with real sampled candidates, and lets a
simulated careful annotator choose, per item, among the polite candidates (the toxicity classifier
says non-toxic) the one closest (chrF) to the prompt's human references, or write the reference
itself when none is polite and close. A simulated reviewer approves this round's pairs, a DPO run
trains on exactly them with VERSION as parent and reference, and the new version is evaluated on
the held-out split (prompts the round never sees). Users and pairs it creates are named
``sim-annotator`` / ``sim-reviewer`` so they are easy to tell apart from real work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detoxsite.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.utils import timezone  # noqa: E402
from sacrebleu.metrics import CHRF  # noqa: E402

from annotations.models import PreferencePair  # noqa: E402
from training.generation import refill_pool  # noqa: E402
from annotations.review import approve_pairs  # noqa: E402
from core.roles import make_reviewer  # noqa: E402
from annotations.services import next_assignment, submit_judgement  # noqa: E402
from evaluation.models import Evaluation  # noqa: E402
from evaluation.services import latest_metrics, queue_evaluation, run_evaluation  # noqa: E402
from training.executor import execute_run  # noqa: E402
from training.ml.evaluate import load_toxicity_classifier  # noqa: E402
from training.models import ModelVersion, TrainingRun  # noqa: E402
from training.services import activate_version, start_training_run  # noqa: E402

CHRF_METRIC = CHRF()
OWN_REWRITE_BELOW = 35.0  # chrF under which the careful annotator writes the reference instead


def simulate_annotation(user: User) -> dict[str, int]:
    """Judge every item the pool offers ``user``; returns how many choices and own rewrites."""
    toxicity = load_toxicity_classifier("profanity-check")
    counts = {"choices": 0, "own_rewrites": 0}
    while (assignment := next_assignment(user=user)) is not None:
        references = list(assignment.item.prompt.references)
        candidates = list(assignment.item.candidates.filter(pk__in=assignment.candidate_order))
        polite = [p < 0.5 for p in toxicity([c.text for c in candidates])]
        scored = [
            (is_polite, CHRF_METRIC.sentence_score(c.text, references).score, c.pk)
            for is_polite, c in zip(polite, candidates)
        ]
        best_polite, best_score, best_id = max(scored)
        if references and not (best_polite and best_score >= OWN_REWRITE_BELOW):
            submit_judgement(user=user, assignment_id=assignment.pk, own_rewrite=references[0], time_spent_ms=9000)
            counts["own_rewrites"] += 1
        else:
            submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=best_id, time_spent_ms=5000)
            counts["choices"] += 1
    return counts


def evaluate(version: ModelVersion) -> dict:
    if not latest_metrics(version):
        evaluation = run_evaluation(queue_evaluation(version=version, enqueue=False).pk)
        if evaluation.status != Evaluation.Status.SUCCEEDED:
            sys.exit(f"error: evaluation of {version.name} failed: {evaluation.error}")
    return latest_metrics(version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="Parent version name (it is activated to collect candidates).")
    parser.add_argument("--prompts", type=int, default=50, help="Items to collect choices on.")
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()

    parent = ModelVersion.objects.filter(name=args.version).first()
    if parent is None:
        sys.exit(f"error: no version named {args.version!r}")
    annotator, _ = User.objects.get_or_create(username="sim-annotator")
    reviewer, _ = User.objects.get_or_create(username="sim-reviewer")
    make_reviewer(reviewer)
    before = evaluate(parent)
    activate_version(version=parent, reason="dpo_round benchmark", override=True)

    round_started = timezone.now()
    started = time.monotonic()
    refill_pool(parent.pk, target=args.prompts)
    collected = time.monotonic() - started
    counts = simulate_annotation(annotator)
    pairs = PreferencePair.objects.filter(judgement__user=annotator, status=PreferencePair.Status.PENDING)
    approved = approve_pairs(reviewer=reviewer, pairs=pairs)

    run = start_training_run(
        kind="dpo", parent=parent, filters={"annotator": annotator.username, "approved_since": round_started},
        hyperparameters={"epochs": args.epochs}, enqueue=False,
    )
    started = time.monotonic()
    run = execute_run(run.pk)
    trained = time.monotonic() - started
    if run.status != TrainingRun.Status.SUCCEEDED:
        sys.exit(f"error: run {run.pk} {run.status}: {run.error}")
    after = evaluate(run.result_version)
    print(json.dumps({
        "parent": parent.name, "child": run.result_version.name, "items": sum(counts.values()), **counts,
        "approved_pairs": approved, "dpo_pairs": run.data_snapshot["count"], "hyperparameters": run.hyperparameters,
        "collect_seconds": round(collected, 1), "train_seconds": round(trained, 1),
        "metrics_before": before, "metrics_after": after,
    }, indent=1, default=str))


if __name__ == "__main__":
    main()
