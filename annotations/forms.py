from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import PreferencePair
from .review import BULK_ACTIONS


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class PairFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status")] + PreferencePair.Status.choices, required=False)
    flagged = forms.ChoiceField(choices=[("", "flagged or not"), ("1", "flagged"), ("0", "not flagged")], required=False)
    annotator = forms.CharField(required=False)
    model_version = forms.CharField(required=False)
    created_after = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_before = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    search = forms.CharField(required=False)

    def apply(self, queryset):
        if not self.is_valid():
            return queryset
        d = self.cleaned_data
        if d["status"]:
            queryset = queryset.filter(status=d["status"])
        if d["flagged"]:
            queryset = queryset.filter(flagged=d["flagged"] == "1")
        if d["annotator"]:
            queryset = queryset.filter(judgement__user__username=d["annotator"])
        if d["model_version"]:
            queryset = queryset.filter(model_version__name=d["model_version"])
        if d["created_after"]:
            queryset = queryset.filter(created_at__date__gte=d["created_after"])
        if d["created_before"]:
            queryset = queryset.filter(created_at__date__lte=d["created_before"])
        if d["search"]:
            from django.db.models import Q

            queryset = queryset.filter(
                Q(prompt__text__icontains=d["search"]) | Q(chosen_text__icontains=d["search"]) | Q(rejected_text__icontains=d["search"])
            )
        return queryset


class BulkReviewForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in BULK_ACTIONS])
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[], required=True)
    note = forms.CharField(required=False)

    def __init__(self, *args, pair_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(i, i) for i in pair_ids]


class EditGoldForm(forms.Form):
    chosen_text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
