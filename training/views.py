"""Staff pages for model versions and training runs."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .models import ModelVersion, VersionActivation


@staff_member_required
def versions(request):
    return render(
        request,
        "training/versions.html",
        {
            "versions": ModelVersion.objects.select_related("parent"),
            "activations": VersionActivation.objects.select_related("version", "previous", "activated_by")[:50],
        },
    )


@staff_member_required
@require_POST
def activate(request, pk: int):
    version = get_object_or_404(ModelVersion, pk=pk)
    services.activate_version(version=version, user=request.user, reason=request.POST.get("reason", ""))
    messages.success(request, f"{version.name} is now active; annotators get candidates from it.")
    return redirect("versions")
