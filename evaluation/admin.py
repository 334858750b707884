from django.contrib import admin

from .models import Evaluation


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "status", "sample_size", "seed", "metrics", "finished_at")
    list_filter = ("status", "version")
    readonly_fields = [f.name for f in Evaluation._meta.fields]
