from __future__ import annotations

from django import forms

from annotations.models import AnnotationItem, Candidate


class GoldItemForm(forms.Form):
    """Which candidate of which item is the known best answer (the service checks they belong)."""

    item = forms.ModelChoiceField(queryset=AnnotationItem.objects.all(), widget=forms.HiddenInput)
    candidate = forms.ModelChoiceField(queryset=Candidate.objects.all(), widget=forms.HiddenInput)


class FindItemForm(forms.Form):
    item = forms.IntegerField(label="Item id", min_value=1)
