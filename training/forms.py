from __future__ import annotations

from django import forms

from training.ml.hyperparameters import Hyperparameter, tunable_hyperparameters

from .models import ModelVersion, TrainingRun

HYPERPARAMETERS = tunable_hyperparameters()


def hyperparameter_field(hp: Hyperparameter) -> forms.Field:
    """An optional form field for ``hp``; its help names the run kinds that take it and their defaults."""
    only = "" if len(hp.kinds) > 1 else f"{hp.kinds[0].upper()}: "
    options = dict(required=False, help_text=only + hp.describe())
    if hp.type is bool:  # ticked when the setting defaults to on (the form then sends off when unticked)
        return forms.BooleanField(initial=any(hp.defaults.values()), **options)
    if hp.choices:
        return forms.ChoiceField(choices=[("", "default")] + [(c, c) for c in hp.choices], **options)
    return {int: forms.IntegerField, float: forms.FloatField}.get(hp.type, forms.CharField)(**options)


class CompareVersionsForm(forms.Form):
    """The versions page's side-by-side choice (``?a=&b=``): unknown or malformed ids are form errors."""

    a = forms.ModelChoiceField(queryset=ModelVersion.objects.all())
    b = forms.ModelChoiceField(queryset=ModelVersion.objects.all())


def labelled_null_boolean(unknown: str, true: str, false: str) -> forms.NullBooleanSelect:
    """A yes/no/unset select whose options say what each one does (it round-trips the value, unlike Select)."""
    widget = forms.NullBooleanSelect()
    widget.choices = [("unknown", unknown), ("true", true), ("false", false)]
    return widget


class StartRunForm(forms.Form):
    """Staff's form to start a run; empty hyperparameters take the defaults of training/ml."""

    kind = forms.ChoiceField(choices=TrainingRun.Kind.choices)
    parent = forms.ModelChoiceField(queryset=ModelVersion.objects.all(), help_text="Defaults to the active version.")
    approved_since = forms.DateTimeField(required=False, help_text="Only pairs approved since (YYYY-MM-DD).")
    annotator = forms.CharField(required=False)
    source = forms.CharField(required=False, help_text="SFT: prompt source (paradetox…); DPO: annotation or arena.")
    include_references = forms.BooleanField(required=False, initial=True, help_text="SFT: imported human references.")
    include_gold_rewrites = forms.BooleanField(required=False, initial=True, help_text="SFT: approved own rewrites.")
    any_version = forms.BooleanField(
        required=False, help_text="DPO: also pairs sampled from other versions than the parent (off-policy)."
    )
    reject_input = forms.BooleanField(
        required=False, initial=True, help_text="DPO: add a pair rejecting the toxic input for each chosen answer."
    )
    reject_own_echo = forms.BooleanField(
        required=False, initial=True,
        help_text="DPO: in those pairs reject the model's own echo of the input where the pool kept one.",
    )
    reject_input_only_echoed = forms.NullBooleanField(
        required=False, label="Input rejections on",
        widget=labelled_null_boolean(
            "Automatic (all after SFT, echoed after DPO)",
            "Only prompts the model echoed",
            "Every prompt",
        ),
        help_text="DPO: which prompts get those pairs. Automatic: every prompt after an SFT or base parent, only "
        "those the model echoed after a DPO parent (rejecting the input everywhere then costs SIM).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].initial = ModelVersion.objects.active()

    def hyperparameters(self) -> dict:
        """The settings given for this kind of run; empty ones take the config's default."""
        data = self.cleaned_data
        given = {}
        for hp in HYPERPARAMETERS:
            value = data.get(hp.name)
            if data["kind"] not in hp.kinds or value in (None, ""):
                continue
            if hp.type is bool and value == bool(hp.defaults[data["kind"]]):
                continue  # a checkbox always sends a value: only one that differs from the default is a setting
            given[hp.name] = value
        return given

    def filters(self) -> dict:
        data = self.cleaned_data
        filters = {k: data[k] for k in ("approved_since", "annotator", "source") if data.get(k)}
        filters["include_references"] = data["include_references"]
        filters["include_gold_rewrites"] = data["include_gold_rewrites"]
        filters["reject_input"] = data["reject_input"]
        filters["reject_own_echo"] = data["reject_own_echo"]
        if data.get("reject_input_only_echoed") is not None:
            filters["reject_input_only_echoed"] = data["reject_input_only_echoed"]
        if data.get("any_version"):
            filters["any_version"] = True
        return filters


StartRunForm.base_fields.update((hp.name, hyperparameter_field(hp)) for hp in HYPERPARAMETERS)
