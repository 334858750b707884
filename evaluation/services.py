"""Evaluation actions: queue an evaluation, run it (the RQ job body), read results, gate promotions."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from annotations.models import Prompt
from core import jobs
from core.actions import ActionRefused
from training import services as training_services
from training.models import ModelVersion, TrainingRun

from .models import EVALUATION_JOBS, Evaluation, EvaluationOutput

if TYPE_CHECKING:
    from training.ml.evaluate import EvalReport

logger = logging.getLogger(__name__)
SHOWN_METRICS = ("sta", "sim", "fl", "chrf", "j")


def queue_evaluation(
    *, version: ModelVersion, user=None, sample_size: int | None = None, seed: int | None = None, enqueue: bool = True
) -> Evaluation:
    """Create a QUEUED evaluation of ``version`` and queue it on ``evaluation`` after commit.

    Without ``sample_size``, ``EVAL_SAMPLE_SIZE`` sentences, or the whole held-out split when that is 0.
    """
    if sample_size is not None and sample_size < 1:
        raise ActionRefused(f"sample_size must be at least 1, got {sample_size}.")
    version.refuse_if_pruned("evaluated")
    population = heldout_prompts().count()
    if not population:
        raise ActionRefused("No held-out prompts with references: import ParaDetox first (manage.py import_prompts).")
    if sample_size is None:
        sample_size = settings.EVAL_SAMPLE_SIZE or population
    evaluation = Evaluation.objects.create(
        version=version, sample_size=sample_size, seed=settings.EVAL_SEED if seed is None else seed, requested_by=user
    )
    if enqueue:
        EVALUATION_JOBS.enqueue_on_commit(evaluation.pk)
    return evaluation


def evaluate_unevaluated_versions(*, user=None) -> list[Evaluation]:
    """Queue one evaluation for each version that has none (finished or pending), e.g. once held-out
    references have been imported; nothing when there are no held-out references."""
    if not heldout_prompts().exists():
        return []
    waiting = ModelVersion.objects.exclude(
        pk__in=Evaluation.objects.unfinished_or_succeeded().values("version_id")
    ).order_by("id")
    return [queue_evaluation(version=version, user=user) for version in waiting]


def queue_evaluation_if_possible(version_id: int) -> None:
    """After a version is registered: evaluate it when automatic evaluation is on and data allow."""
    if not settings.EVAL_AUTO:
        return
    try:
        queue_evaluation(version=ModelVersion.objects.get(pk=version_id))
    except ActionRefused as exc:
        logger.info("no automatic evaluation of version %s: %s", version_id, exc.message)


def heldout_prompts():
    """The fixed held-out split with human references, in a stable order (the seed samples from it)."""
    return Prompt.objects.heldout().exclude(references=[]).order_by("id")


def fluency_lm_dir() -> str | None:
    """The LM used inside the fluency score, per ``EVAL_FLUENCY_LM`` ("base", "", or a path)."""
    choice = settings.EVAL_FLUENCY_LM
    if not choice:
        return None
    if choice == "base":
        base = ModelVersion.objects.filter(kind=ModelVersion.Kind.BASE, directory__startswith="base-").order_by("id").first()
        return str(base.path) if base and base.path.exists() else None
    return choice


def score_rewrites(inputs: list[str], outputs: list[str], references: list[list[str]]) -> EvalReport:
    """Score ``outputs`` (rewrites of ``inputs``) with the judges a version's evaluation uses: the STA
    classifier ``EVAL_TOXICITY_CLASSIFIER`` names and the fluency LM. An ``EvalReport`` (per-row J too),
    for texts no version generated: human references, or both sides of annotated pairs.
    ``ActionRefused`` when ``trained`` is named but no judge is trained yet."""
    from training.ml.evaluate import EvalConfig, evaluate_outputs

    from . import judges

    config = EvalConfig(classifier=judges.classifier_spec())
    return evaluate_outputs(inputs, outputs, references, config=config, fluency_lm_dir=fluency_lm_dir())


def run_evaluation(evaluation_id: int) -> Evaluation:
    """Claim a queued evaluation and run it here; the row records success or the traceback."""
    jobs.reap_all()
    claimed = EVALUATION_JOBS.claim(evaluation_id)
    evaluation = Evaluation.objects.select_related("version").get(pk=evaluation_id)
    if not claimed:
        return evaluation
    try:
        with EVALUATION_JOBS.heartbeat(evaluation_id):
            _evaluate(evaluation)
    except Exception as exc:  # recorded on the row; versions and annotations are untouched
        logger.exception("evaluation %s failed", evaluation_id)
        EVALUATION_JOBS.fail(evaluation_id, exc)
    settle_after_evaluation(evaluation)
    return Evaluation.objects.get(pk=evaluation_id)


def settle_after_evaluation(evaluation: Evaluation) -> None:
    """Let the first-SFT decisions waiting on ``evaluation``'s version move on, whether it succeeded or
    failed (the job's end, and the reaper's for a dead worker). Never raises: the evaluation's own
    outcome is already recorded, and staff can still activate by hand."""
    try:
        settle_first_sft_runs(evaluation.version)
    except Exception:
        logger.exception("could not settle first-SFT runs after evaluation %s", evaluation.pk)


def retry_evaluation(*, evaluation: Evaluation) -> Evaluation:
    """Queue a failed evaluation again (its worker died, or Redis was down when it was queued)."""
    if not EVALUATION_JOBS.retry(evaluation.pk):
        raise ActionRefused(f"Only a failed evaluation can be retried; evaluation {evaluation.pk} is {evaluation.status}.", 409)
    evaluation.refresh_from_db()
    return evaluation


def _evaluate(evaluation: Evaluation) -> None:
    from training.ml.evaluate import EvalConfig, evaluate_model, load_toxicity_classifier
    from training.ml.generate import Generator

    from . import judges

    prompts = list(heldout_prompts())
    try:
        spec = judges.classifier_spec()
    except ActionRefused as exc:
        raise RuntimeError(exc.message) from exc
    config = EvalConfig(
        sample_size=evaluation.sample_size,
        seed=evaluation.seed,
        classifier=spec,
        max_new_tokens=settings.MAX_NEW_TOKENS,
    )
    others = {key: load_toxicity_classifier(other) for key, other in judges.other_judges(spec).items()}
    # A private generator: the process-wide one keeps serving annotation candidates.
    generator = Generator(evaluation.version.path)
    report = evaluate_model(
        evaluation.version.path,
        [p.text for p in prompts],
        [p.references for p in prompts],
        config=config,
        generator=generator,
        fluency_lm_dir=fluency_lm_dir(),
        other_classifiers=others,
    )
    del generator
    by_index = report.meta.pop("sample_indices", [])
    with transaction.atomic():
        EvaluationOutput.objects.bulk_create(
            EvaluationOutput(
                evaluation=evaluation,
                prompt=prompts[index],
                output=row.output,
                toxicity=row.toxicity,
                sta=row.sta,
                sim=row.sim,
                fl=row.fl,
                chrf=row.chrf,
                j=row.j,
                fl_flags=row.fl_flags,
            )
            for index, row in zip(by_index, report.rows)
        )
        if not EVALUATION_JOBS.finish(
            evaluation.pk, config=config.as_dict(), metrics=report.metrics, meta=report.meta
        ):
            raise RuntimeError(f"evaluation {evaluation.pk} was reaped while it ran; its outputs are discarded")


def latest_evaluation(version: ModelVersion) -> Evaluation | None:
    return version.evaluations.succeeded().order_by("-finished_at", "-id").first()


def latest_metrics(version: ModelVersion) -> dict[str, Any]:
    evaluation = latest_evaluation(version)
    return evaluation.metrics if evaluation else {}


def compare_versions(candidate: ModelVersion, baseline: ModelVersion) -> dict[str, Any]:
    """ΔJ, ΔSTA, ΔSIM, ΔFL (candidate - baseline) with paired bootstrap intervals over the held-out
    prompts both latest evaluations scored, as ``{"baseline", "n", "deltas", ...}``; or
    ``{"baseline", "missing": why}`` when there is nothing to compare."""
    from training.ml.comparison import COMPARED_METRICS, paired_bootstrap

    result: dict[str, Any] = {"baseline": baseline.name}
    ours, theirs = latest_evaluation(candidate), latest_evaluation(baseline)
    if theirs is None or ours is None:
        result["missing"] = f"{(baseline if theirs is None else candidate).name} has no finished evaluation"
        return result
    scored_by = ours.meta.get("classifier"), theirs.meta.get("classifier")
    if scored_by[0] != scored_by[1]:
        result["missing"] = (
            f"their latest evaluations were scored by different toxicity judges ({scored_by[0]} and {scored_by[1]}): "
            "evaluate both with the same EVAL_TOXICITY_CLASSIFIER"
        )
        return result
    fields = ("prompt_id", *COMPARED_METRICS)
    baseline_rows = {row["prompt_id"]: row for row in theirs.outputs.values(*fields)}
    pairs = [(row, baseline_rows[row["prompt_id"]]) for row in ours.outputs.values(*fields) if row["prompt_id"] in baseline_rows]
    if not pairs:
        result["missing"] = f"the evaluations of {candidate.name} and {baseline.name} share no prompts"
        return result
    comparison = paired_bootstrap(
        [c for c, _ in pairs],
        [b for _, b in pairs],
        resamples=settings.PROMOTION_BOOTSTRAP_RESAMPLES,
        seed=settings.PROMOTION_BOOTSTRAP_SEED,
        confidence=settings.PROMOTION_CONFIDENCE,
    )
    return {**result, **comparison.as_dict()}


def describe_delta(comparison: dict[str, Any], metric: str = "j") -> str:
    """E.g. "ΔJ -0.012 (95% CI -0.031 to +0.006, 812 prompts)"."""
    d = comparison["deltas"][metric]
    label = "J" if metric == "j" else metric.upper()
    return (
        f"Δ{label} {d['delta']:+.3f} ({comparison['confidence']:.0%} CI {d['low']:+.3f} to {d['high']:+.3f}, "
        f"{comparison['n']} prompts)"
    )


@dataclass
class PromotionCheck:
    """The promotion gate's verdict: a ``problem`` needs a staff override with a reason; a ``warning``
    passes but is shown; ``comparison`` is ``compare_versions(candidate, active)`` (None without an active)."""

    problem: str | None = None
    warning: str | None = None
    comparison: dict[str, Any] | None = None


def promotion_check(candidate: ModelVersion, active: ModelVersion | None) -> PromotionCheck:
    """Judge activating ``candidate`` in place of ``active`` on the same held-out prompts.

    Refused without override: SIM below ``PROMOTION_MIN_SIM``; a significant drop of J (upper bound
    of the paired interval of ΔJ below ``-PROMOTION_J_TOLERANCE``); no comparison at all (either
    version never evaluated, or no shared prompts). A ΔJ whose interval holds 0 passes with a warning.
    """
    check = PromotionCheck()
    problems = []
    new = latest_metrics(candidate)
    if new and new["sim"] < settings.PROMOTION_MIN_SIM:
        problems.append(f"its similarity {new['sim']:.3f} is below the threshold {settings.PROMOTION_MIN_SIM:.3f}")
    if active is not None and active.pk != candidate.pk:
        check.comparison = compare_versions(candidate, active)
        if "missing" in check.comparison:
            problems.append(f"there is no comparison with {active.name}: {check.comparison['missing']}")
        else:
            j = check.comparison["deltas"]["j"]
            if j["high"] < -settings.PROMOTION_J_TOLERANCE:
                old = latest_metrics(active)
                problems.append(
                    f"its J {new['j']:.3f} is lower than {active.name}'s {old['j']:.3f}: {describe_delta(check.comparison)}"
                )
            elif j["low"] <= 0:
                check.warning = f"{describe_delta(check.comparison)} against {active.name} is within noise."
    if problems:
        check.problem = f"Activating {candidate.name} needs an override with a reason: " + " and ".join(problems) + "."
    return check


def promotion_problem(candidate: ModelVersion, active: ModelVersion | None) -> str | None:
    """Why activating ``candidate`` instead of ``active`` needs a staff override, or None (see ``promotion_check``)."""
    return promotion_check(candidate, active).problem


def side_by_side(a: ModelVersion, b: ModelVersion, *, limit: int = 50) -> list[dict[str, Any]]:
    """Outputs of the latest evaluations of ``a`` and ``b`` on the same held-out sentences."""
    ea, eb = latest_evaluation(a), latest_evaluation(b)
    if ea is None or eb is None:
        return []
    theirs = {o.prompt_id: o for o in eb.outputs.all()}
    rows = []
    for mine in ea.outputs.select_related("prompt"):
        other = theirs.get(mine.prompt_id)
        if other is not None:
            rows.append({"prompt": mine.prompt.text, "references": mine.prompt.references, "a": mine, "b": other})
        if len(rows) >= limit:
            break
    return rows


# --- the first model: activated on its own when it beats the base ----------------------------------


# A failed evaluation is queued once more before the first-model decision gives up on it.
FIRST_MODEL_EVALUATION_ATTEMPTS = 2


def settle_first_sft_runs(version: ModelVersion) -> list[TrainingRun]:
    """After an evaluation of ``version`` finished (succeeded or failed): decide every finished
    first-SFT run that waits on it (as the new version or as its parent). Returns the runs decided now."""
    waiting = TrainingRun.objects.filter(
        is_first_sft=True, status=TrainingRun.Status.SUCCEEDED, auto_activation=""
    ).filter(Q(result_version=version) | Q(parent=version))
    return [run for run in waiting if activate_first_model_if_better(run)]


def activate_first_model_if_better(run: TrainingRun) -> str:
    """Activate the first SFT's version when both it and its parent have a finished evaluation, its
    parent is still active, the promotion gate raises no problem and the whole paired interval of ΔJ
    lies above 0 (nobody looked at it, so "within noise" is not enough). The outcome and its reason
    are stored on the run (``auto_activation``) and returned; "" while an evaluation is still missing
    (one is queued for a version that has none pending). A version whose evaluation failed
    ``FIRST_MODEL_EVALUATION_ATTEMPTS`` times since the run started settles it as not activated, so
    the decision never waits forever. Decided once, under a row lock.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("parent", "result_version").get(pk=run.pk)
        if run.auto_activation or run.result_version is None:
            return run.auto_activation
        candidate, base = run.result_version, run.parent
        for version in (candidate, base):
            if latest_evaluation(version) is None:
                outcome = _evaluation_failed_outcome(version, run=run)
                if outcome is None:
                    _evaluate_if_nothing_pending(version)
                    return ""
                break
        else:
            outcome = _first_model_outcome(candidate, base)
        run.auto_activation = outcome
        run.save(update_fields=["auto_activation"])
    logger.info("first SFT run %s: %s", run.pk, outcome)
    return outcome


def _evaluation_failed_outcome(version: ModelVersion, *, run: TrainingRun) -> str | None:
    """The decision when ``version`` has no evaluation pending and its evaluations failed
    ``FIRST_MODEL_EVALUATION_ATTEMPTS`` times since ``run`` started; None while it may still succeed."""
    if version.evaluations.unfinished().exists():
        return None
    failed = version.evaluations.filter(status=Evaluation.Status.FAILED, created_at__gte=run.created_at)
    attempts = failed.count()
    if attempts < FIRST_MODEL_EVALUATION_ATTEMPTS:
        return None
    last = failed.order_by("-finished_at", "-id").first()
    role = "its parent" if version.pk == run.parent_id else "the new version"
    error = " ".join(last.error.split()).rstrip(".")
    error = error if len(error) <= 300 else error[:299] + "…"
    return (
        f"Not activated: the evaluation of {version.name} ({role}) failed {attempts} times (last error: {error}). "
        "Evaluate it again on the versions page once that is fixed, then activate by hand."
    )


def _evaluate_if_nothing_pending(version: ModelVersion) -> None:
    pending = version.evaluations.unfinished().exists()
    if not pending:
        try:
            queue_evaluation(version=version)
        except ActionRefused as exc:
            logger.info("cannot evaluate %s for the first-model decision: %s", version.name, exc.message)


def _first_model_outcome(candidate: ModelVersion, base: ModelVersion) -> str:
    """Activate ``candidate`` if it beats ``base``; the sentence saying what happened and why."""
    active = ModelVersion.objects.active()
    if active is None or active.pk != base.pk:
        now = active.name if active else "no version"
        return f"Not activated: {now} is active instead of {base.name}, so staff decide on the versions page."
    check = promotion_check(candidate, base)
    if check.problem:
        return f"Not activated: {check.problem}"
    delta = describe_delta(check.comparison)
    if check.comparison["deltas"]["j"]["low"] <= 0:
        return (
            f"Not activated: it does not clearly beat {base.name} ({delta}; the whole interval must lie above 0). "
            "Activate it by hand on the versions page if its outputs look better."
        )
    try:
        training_services.activate_version(version=candidate, reason=f"First SFT beats {base.name}: {delta}.")
    except ActionRefused as exc:
        return f"Not activated: {exc.message}"
    return f"Activated: it beats {base.name}, {delta}."
