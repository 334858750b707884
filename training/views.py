"""Staff pages for model versions and training runs."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.actions import ActionRefused
from evaluation.services import SHOWN_METRICS, latest_metrics, side_by_side

from . import services
from .forms import StartRunForm
from .models import ModelVersion, TrainingRun, VersionActivation


@staff_member_required
def versions(request):
    """All versions with lineage and their latest evaluation, a metrics chart, and side-by-side outputs."""
    all_versions = list(ModelVersion.objects.select_related("parent").order_by("created_at", "id"))
    rows = [{"version": v, "metrics": latest_metrics(v), "depth": len(v.lineage()) - 1} for v in all_versions]
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
        services.activate_version(
            version=version, user=request.user, reason=request.POST.get("reason", ""), override=bool(request.POST.get("override"))
        )
        messages.success(request, f"{version.name} is now active; annotators get candidates from it.")
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
    return render(request, "training/run.html", {"run": run})


@staff_member_required
@require_POST
def cancel_run(request, pk: int):
    try:
        services.cancel_training_run(run=get_object_or_404(TrainingRun, pk=pk), user=request.user)
        messages.success(request, f"Run {pk}: cancel requested.")
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("training-run", pk=pk)
