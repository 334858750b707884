"""The toxicity judge behind STA: alt-profanity-check, or one trained here on the imported data
(``training.ml.judge``) and kept in ``MODEL_STORE/judges/<name>/``.

``EVAL_TOXICITY_CLASSIFIER=trained`` (or a judge directory) makes evaluations score STA with the
trained judge; whichever judge scores STA, the other one's STA is reported next to it while a
trained judge exists, so the two can be compared on every version.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from annotations.records import reference_prompts
from core import jobs
from core.actions import ActionRefused
from training.ml.evaluate import DEFAULT_CLASSIFIER
from training.ml.judge import is_judge_directory, read_judge_file

from .models import JUDGE_JOBS, JudgeTraining

TRAINED = "trained"
PROFANITY_NAMES = ("profanity-check", "alt-profanity-check", "profanity_check", "default")


def judge_directory(name: str = TRAINED) -> Path:
    return Path(settings.MODEL_STORE) / "judges" / name


def trained_judge() -> dict[str, Any] | None:
    """``judge.json`` of the trained judge (its held-out accuracy next to profanity-check's), or None."""
    directory = judge_directory()
    return read_judge_file(directory) if is_judge_directory(directory) else None


def classifier_spec() -> str:
    """What ``EVAL_TOXICITY_CLASSIFIER`` names, with ``trained`` resolved to the judge's directory."""
    choice = settings.EVAL_TOXICITY_CLASSIFIER
    if choice == TRAINED:
        directory = judge_directory()
        if not is_judge_directory(directory):
            raise ActionRefused(
                f"EVAL_TOXICITY_CLASSIFIER=trained but no judge is trained at {directory}: run manage.py train_judge."
            )
        return str(directory)
    return choice


def judge_for_cleaning() -> str:
    """The judge SFT cleaning drops still-toxic references with (``hooks.TOXICITY_JUDGE``): the one STA
    is scored with, so a model is not trained on what its evaluation counts as toxic; profanity-check
    while ``EVAL_TOXICITY_CLASSIFIER=trained`` has no judge trained yet."""
    try:
        return classifier_spec()
    except ActionRefused:
        return DEFAULT_CLASSIFIER


def other_judges(spec: str) -> dict[str, str]:
    """The judge reported beside ``spec`` as ``sta_<key>``: profanity-check beside a trained judge,
    the trained judge beside profanity-check (when one exists); nothing otherwise."""
    if is_judge_directory(spec):
        return {"profanity": DEFAULT_CLASSIFIER}
    if spec in PROFANITY_NAMES and is_judge_directory(judge_directory()):
        return {TRAINED: str(judge_directory())}
    return {}


def train_toxicity_judge(*, name: str = TRAINED, max_per_side: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Train the judge on the non-held-out prompts (toxic) and their references (neutral), measure it
    and profanity-check on the held-out prompts and their references, and save it. Returns ``judge.json``.

    Refused (``ActionRefused``) without references outside the held-out split or without held-out
    references; the held-out split never reaches training (``reference_prompts`` excludes it, and
    ``train_judge`` refuses any held-out text).
    """
    from training.ml.judge import JudgeConfig, JudgeError, train_judge

    from .services import heldout_prompts

    toxic, neutral = [], []
    for prompt in reference_prompts().only("text", "references").iterator(chunk_size=2000):
        toxic.append(prompt.text)
        neutral.extend(r for r in prompt.references if r.strip())
    if not toxic or not neutral:
        raise ActionRefused("No references outside the held-out split: import ParaDetox first (manage.py import_prompts).")
    heldout = list(heldout_prompts().only("text", "references"))
    if not heldout:
        raise ActionRefused("No held-out prompts with references to measure the judge on: import more ParaDetox rows.")
    config = JudgeConfig(seed=seed, **({"max_per_side": max_per_side} if max_per_side else {}))
    try:
        return train_judge(
            toxic=toxic,
            neutral=neutral,
            heldout_toxic=[p.text for p in heldout],
            heldout_neutral=[r for p in heldout for r in p.references if r.strip()],
            output_dir=judge_directory(name),
            config=config,
        )
    except JudgeError as exc:
        raise ActionRefused(f"Cannot train the judge: {exc}.") from exc


def describe_accuracy(measured: dict[str, Any]) -> str:
    """E.g. "0.912 (95% CI 0.897–0.925, n=1,480)"."""
    return (
        f"{measured['accuracy']:.3f} ({measured['confidence']:.0%} CI {measured['low']:.3f}–{measured['high']:.3f}, "
        f"n={measured['n']:,})"
    )


def queue_judge_training(*, user=None, enqueue: bool = True) -> JudgeTraining:
    """Queue ``train_toxicity_judge`` on the ``evaluation`` queue (the staff button and API); refused
    while one is queued or running (409) or before there is data to train and measure on (400)."""
    from .services import heldout_prompts

    pending = JudgeTraining.objects.unfinished().first()
    if pending is not None:
        raise ActionRefused(f"Judge training {pending.pk} is already {pending.status}.", 409)
    if not reference_prompts().exists():
        raise ActionRefused("No references outside the held-out split: import ParaDetox first (manage.py import_prompts).")
    if not heldout_prompts().exists():
        raise ActionRefused("No held-out prompts with references to measure the judge on: import more ParaDetox rows.")
    training = JudgeTraining.objects.create(requested_by=user)
    if enqueue:
        JUDGE_JOBS.enqueue_on_commit(training.pk)
    return training


def run_judge_training(training_id: int) -> JudgeTraining:
    """The RQ job's body: claim the row, train the judge here, record its judge.json or the error."""
    jobs.reap_all()
    if JUDGE_JOBS.claim(training_id):
        try:
            with JUDGE_JOBS.heartbeat(training_id):
                meta = train_toxicity_judge()
            JUDGE_JOBS.finish(training_id, result=meta)
        except ActionRefused as exc:
            JUDGE_JOBS.fail(training_id, exc.message)
        except Exception as exc:  # recorded on the row; the judge in use is untouched
            JUDGE_JOBS.fail(training_id, exc)
    return JudgeTraining.objects.get(pk=training_id)
