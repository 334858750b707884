"""Staff pages for training runs (the versions page, with its scores, is in ``evaluation.views``)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.actions import ActionRefused
from core.display import as_items

from . import services
from .forms import StartRunForm
from .models import TrainingRun


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
    return render(
        request, "training/runs.html", {"form": form, "runs": recent, "first_sft_offered": services.first_sft_refusal() is None}
    )


@staff_member_required
@require_POST
def start_first_sft(request):
    """The "Train the first model" button on the training and versions pages."""
    try:
        run = services.start_first_sft(user=request.user)
        messages.success(request, f"First SFT run {run.pk} queued on {run.rows_used} references; it is activated if it beats {run.parent.name}.")
        return redirect("training-run", pk=run.pk)
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("training-runs")


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
