"""The reviewer dashboard for annotation quality, and the staff page for gold items."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from annotations.models import AnnotationItem
from core.actions import ActionRefused
from annotations.views import reviewer_required
from training.models import ModelVersion

from . import services
from .forms import FindItemForm, GoldItemForm


@login_required
@reviewer_required
def dashboard(request):
    versions = ModelVersion.objects.order_by("-id")
    version = versions.filter(name=request.GET.get("version")).first() if request.GET.get("version") else None
    context = {
        "versions": versions,
        "version": version,
        "overall": services.overall_agreement(version=version),
        "thresholds": services.Thresholds.from_settings(),
        "annotators": services.annotator_report(version=version),
        "version_rows": services.version_report(),
        "gold_count": AnnotationItem.objects.filter(gold_candidate__isnull=False).count(),
    }
    return render(request, "quality/dashboard.html", context)


@staff_member_required
def gold(request):
    if request.method == "POST":
        form = GoldItemForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Unknown item or candidate.")
        else:
            try:
                item = services.make_gold_item(user=request.user, **form.cleaned_data)
                messages.success(request, f"Item {item.pk} is now a gold item: {item.gold_candidate.text!r}.")
            except ActionRefused as exc:
                messages.error(request, exc.message)
        return redirect("quality-gold")
    finder = FindItemForm(request.GET or None)
    found = None
    if finder.is_valid():
        found = AnnotationItem.objects.select_related("prompt", "model_version").filter(pk=finder.cleaned_data["item"]).first()
        if found is None:
            finder.add_error("item", f"No item {finder.cleaned_data['item']}.")
    context = {
        "finder": finder,
        "found": found,
        "gold_items": services.gold_items()[:100],
        "suggestions": services.gold_suggestions(),
    }
    return render(request, "quality/gold.html", context)
