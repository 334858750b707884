"""The versions page: every model version with its scores and lineage, side-by-side outputs, and
activation behind the promotion gate. It lives here because it shows evaluation results; the
activation itself is ``training.services.activate_version``."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.actions import ActionRefused
from core.display import as_items
from training import services as training_services
from training.forms import CompareVersionsForm
from training.models import ModelVersion, TrainingRun, VersionActivation

from . import judges
from .models import JudgeTraining
from .services import SHOWN_METRICS, compare_versions, latest_metrics, queue_evaluation, side_by_side

OTHER_STA = {"sta_trained": "trained judge", "sta_profanity": "profanity-check"}


@staff_member_required
def versions(request):
    """All versions with lineage and their latest evaluation, a metrics chart, and side-by-side outputs."""
    all_versions = list(ModelVersion.objects.select_related("parent").order_by("created_at", "id"))
    active = next((v for v in all_versions if v.is_active), None)
    first_runs = {run.result_version_id: run for run in TrainingRun.objects.filter(is_first_sft=True, result_version__isnull=False)}
    rows = [
        {
            "version": v,
            "metrics": latest_metrics(v),
            "depth": len(v.lineage()) - 1,
            "family": v.family,
            "versus_active": compare_versions(v, active) if active is not None and v.pk != active.pk else None,
            "hyperparameters": as_items(v.hyperparameters),
            "evaluating": v.evaluations.unfinished().exists(),
            "first_sft": first_runs.get(v.pk),
        }
        for v in all_versions
    ]
    for row in rows:
        row["other_sta"] = [(label, row["metrics"][key]) for key, label in OTHER_STA.items() if key in row["metrics"]]
    chart = [{"name": r["version"].name, **{k: r["metrics"].get(k) for k in SHOWN_METRICS}} for r in rows if r["metrics"]]
    compared, compare_form = None, None
    if "a" in request.GET or "b" in request.GET:
        compare_form = CompareVersionsForm(request.GET)
        if compare_form.is_valid():
            va, vb = compare_form.cleaned_data["a"], compare_form.cleaned_data["b"]
            compared = {"a": va, "b": vb, "rows": side_by_side(va, vb)}
    return render(
        request,
        "training/versions.html",
        {
            "rows": rows[::-1],
            "chart": chart,
            "versions": all_versions,
            "compared": compared,
            "compare_errors": compare_form.errors if compare_form is not None and compare_form.errors else None,
            "activations": VersionActivation.objects.select_related("version", "previous", "activated_by")[:50],
            "first_sft_offered": training_services.first_sft_refusal() is None,
            "judge": judge_summary(),
            "latest_judge_training": JudgeTraining.objects.first(),
        },
        status=400 if compared is None and compare_form is not None else 200,
    )


@staff_member_required
@require_POST
def activate(request, pk: int):
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        activation = training_services.activate_version(
            version=version, user=request.user, reason=request.POST.get("reason", ""), override=bool(request.POST.get("override"))
        )
        messages.success(request, f"{version.name} is now active; annotators get candidates from it.")
        if activation.warning:
            messages.warning(request, activation.warning)
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("versions")


@staff_member_required
@require_POST
def evaluate(request, pk: int):
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        evaluation = queue_evaluation(version=version, user=request.user)
        messages.success(request, f"Evaluation of {version.name} on {evaluation.sample_size} held-out sentences queued.")
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("versions")


def judge_summary() -> dict | None:
    """The trained toxicity judge's held-out accuracy next to profanity-check's, for the versions page."""
    meta = judges.trained_judge()
    if meta is None:
        return None
    return {
        "meta": meta,
        "in_use": settings.EVAL_TOXICITY_CLASSIFIER,
        "accuracies": [(name, judges.describe_accuracy(measured)) for name, measured in meta["accuracy"].items()],
    }


@staff_member_required
@require_POST
def train_judge(request):
    """The "Train the judge" button: queue a judge training on the evaluation queue."""
    try:
        training = judges.queue_judge_training(user=request.user)
        messages.success(request, f"Judge training {training.pk} queued; its accuracy appears here when it finishes.")
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("versions")
