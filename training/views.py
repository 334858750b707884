"""Staff pages for model versions and training runs."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.actions import ActionRefused
from evaluation.services import SHOWN_METRICS, compare_versions, latest_metrics, queue_evaluation, side_by_side

from . import services
from .forms import StartRunForm
from .models import ModelVersion, TrainingRun, VersionActivation


def as_items(mapping: dict | None, prefix: str = "") -> list[tuple[str, str]]:
    """A settings or metrics dict as (key, value) lines for a page; nested dicts get dotted keys."""
    items: list[tuple[str, str]] = []
    for key, value in (mapping or {}).items():
        if isinstance(value, dict):
            items.extend(as_items(value, f"{prefix}{key}."))
        elif isinstance(value, float):
            items.append((f"{prefix}{key}", f"{value:.4g}"))
        elif isinstance(value, list) and len(value) > 12:
            items.append((f"{prefix}{key}", f"{len(value)} items"))
        else:
            items.append((f"{prefix}{key}", "–" if value is None else str(value)))
    return items


@staff_member_required
def versions(request):
    """All versions with lineage and their latest evaluation, a metrics chart, and side-by-side outputs."""
    all_versions = list(ModelVersion.objects.select_related("parent").order_by("created_at", "id"))
    active = next((v for v in all_versions if v.is_active), None)
    rows = [
        {
            "version": v,
            "metrics": latest_metrics(v),
            "depth": len(v.lineage()) - 1,
            "versus_active": compare_versions(v, active) if active is not None and v.pk != active.pk else None,
            "hyperparameters": as_items(v.hyperparameters),
            "evaluating": v.evaluations.filter(status__in=["queued", "running"]).exists(),
        }
        for v in all_versions
    ]
    chart = [{"name": r["version"].name, **{k: r["metrics"].get(k) for k in SHOWN_METRICS}} for r in rows if r["metrics"]]
    a, b = request.GET.get("a"), request.GET.get("b")
    compared = None
    if a and b:
        va, vb = get_object_or_404(ModelVersion, pk=a), get_object_or_404(ModelVersion, pk=b)
        compared = {"a": va, "b": vb, "rows": side_by_side(va, vb)}
    return render(
        request,
        "training/versions.html",
        {
            "rows": rows[::-1],
            "chart": chart,
            "versions": all_versions,
            "compared": compared,
            "activations": VersionActivation.objects.select_related("version", "previous", "activated_by")[:50],
        },
    )


@staff_member_required
@require_POST
def activate(request, pk: int):
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        activation = services.activate_version(
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


@staff_member_required
def runs(request):
    services.reap_dead_runs()
    form = StartRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.start_training_run(
                kind=form.cleaned_data["kind"],
                parent=form.cleaned_data["parent"],
                user=request.user,
                filters=form.filters(),
                hyperparameters=form.hyperparameters(),
            )
            messages.success(request, f"Run {run.pk} queued on {run.rows_used} rows.")
            return redirect("training-run", pk=run.pk)
        except ActionRefused as exc:
            form.add_error(None, exc.message)
    recent = TrainingRun.objects.select_related("parent", "result_version", "created_by")[:100]
    return render(request, "training/runs.html", {"form": form, "runs": recent})


@staff_member_required
def run_detail(request, pk: int):
    run = get_object_or_404(TrainingRun.objects.select_related("parent", "result_version"), pk=pk)
    return render(
        request,
        "training/run.html",
        {
            "run": run,
            "hyperparameters": as_items(run.hyperparameters),
            "data_filters": as_items(run.data_filters),
            "cleaning": as_items(run.data_snapshot.get("cleaning")),
            "metrics": as_items(run.metrics),
            "both_logps_dropped": run.metrics.get("both_logps_dropped") == 1.0,
        },
    )


@staff_member_required
@require_POST
def cancel_run(request, pk: int):
    try:
        services.cancel_training_run(run=get_object_or_404(TrainingRun, pk=pk), user=request.user)
        messages.success(request, f"Run {pk}: cancel requested.")
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("training-run", pk=pk)
