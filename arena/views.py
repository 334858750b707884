"""Arena pages: the blind A/B page for everyone, comparisons and results for reviewers and staff."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotations.models import Judgement
from core.actions import ActionRefused
from annotations.views import reviewer_required

from . import services
from .api.views import results_payload
from .forms import OpenComparisonForm
from .models import Comparison


@login_required
def arena(request):
    comparison = request.GET.get("comparison", "")
    return render(
        request,
        "arena/arena.html",
        {"skip_reasons": Judgement.SkipReason.choices, "comparison": comparison if comparison.isdigit() else ""},
    )


@login_required
@reviewer_required
def comparisons(request):
    form = OpenComparisonForm(request.POST or None) if request.user.is_staff else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied("Only staff can open comparisons.")
        if form.is_valid():
            try:
                comparison = services.open_comparison(user=request.user, **form.cleaned_data)
                messages.success(request, f"Comparison “{comparison.name}” opened; its matches are being generated.")
                return redirect("arena-comparisons")
            except ActionRefused as exc:
                form.add_error(None, exc.message)
    listed = Comparison.objects.with_counts().select_related("created_by").prefetch_related("versions")
    return render(request, "arena/comparisons.html", {"form": form, "comparisons": listed})


@login_required
@reviewer_required
def comparison_results(request, pk: int):
    comparison = get_object_or_404(Comparison.objects.with_counts().prefetch_related("versions"), pk=pk)
    try:
        services.check_results_visible(user=request.user, comparison=comparison)
    except ActionRefused as exc:
        raise PermissionDenied(exc.message) from exc
    payload = results_payload(comparison)
    names = [standing["version"] for standing in payload["standings"]]
    matrix = [
        (row, [(column, payload["win_rates"][row].get(column), payload["pair_judgements"][row].get(column)) for column in names])
        for row in names
    ]
    return render(request, "arena/results.html", {**payload, "names": names, "matrix": matrix})


@staff_member_required
@require_POST
def close(request, pk: int):
    try:
        comparison = services.close_comparison(comparison=get_object_or_404(Comparison, pk=pk), user=request.user)
        messages.success(request, f"Comparison “{comparison.name}” closed.")
    except ActionRefused as exc:
        messages.error(request, exc.message)
    return redirect("arena-comparisons")
