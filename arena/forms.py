from __future__ import annotations

from django import forms

from training.models import ModelVersion

from .services import MAX_MATCHES


class OpenComparisonForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "e.g. dpo-3 vs sft-2"}))
    versions = forms.ModelMultipleChoiceField(
        queryset=ModelVersion.objects.order_by("-created_at"),
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="Two or more (Ctrl/⌘-click to pick several).",
    )
    matches_wanted = forms.IntegerField(min_value=1, max_value=MAX_MATCHES, initial=50, help_text="Prompt × version pair.")
