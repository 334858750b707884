from __future__ import annotations

from django.contrib import admin, messages

from core.actions import ActionRefused

from . import services
from .models import ModelVersion, VersionActivation


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "family", "parent", "is_active", "pruned_at", "device", "created_at")
    list_filter = ("kind", "is_active", ("pruned_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "notes")
    readonly_fields = (
        "name", "kind", "directory", "parent", "is_active", "source", "hyperparameters", "metrics",
        "data_snapshot", "library_versions", "device", "created_at", "pruned_at", "pruned_bytes",
    )
    actions = ["activate_selected"]

    @admin.action(description="Activate (or roll back to) the selected version")
    def activate_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        version = queryset.get()
        try:
            services.activate_version(version=version, user=request.user, reason="admin action")
        except ActionRefused as exc:
            self.message_user(request, f"{exc.message} Use the versions page to override.", messages.ERROR)
            return
        self.message_user(request, f"{version.name} is now active.", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VersionActivation)
class VersionActivationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "version", "previous", "activated_by", "reason")
    readonly_fields = ("version", "previous", "activated_by", "reason", "created_at")
