from __future__ import annotations

from django import forms

from training.ml.dpo import LOSS_TYPES

from .models import ModelVersion, TrainingRun

HYPERPARAMETERS = (
    "epochs", "max_steps", "batch_size", "learning_rate", "max_length", "subset_size", "beta", "loss_type", "rpo_alpha",
    "use_lora", "seed",
)
DPO_ONLY = ("beta", "loss_type", "rpo_alpha")


class CompareVersionsForm(forms.Form):
    """The versions page's side-by-side choice (``?a=&b=``): unknown or malformed ids are form errors."""

    a = forms.ModelChoiceField(queryset=ModelVersion.objects.all())
    b = forms.ModelChoiceField(queryset=ModelVersion.objects.all())


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
    epochs = forms.FloatField(required=False, help_text="SFT 1, DPO 2")
    max_steps = forms.IntegerField(required=False, help_text="-1 = use epochs")
    batch_size = forms.IntegerField(required=False, help_text="SFT 8, DPO 4")
    learning_rate = forms.FloatField(required=False, help_text="SFT 5e-5, DPO 5e-6; 10x with LoRA")
    max_length = forms.IntegerField(required=False, help_text="128 tokens")
    subset_size = forms.IntegerField(required=False, help_text="SFT: e.g. 800 for the quick CPU path")
    beta = forms.FloatField(required=False, help_text="DPO: 0.1")
    loss_type = forms.ChoiceField(
        required=False, choices=[("", "sigmoid (default)")] + [(t, t) for t in LOSS_TYPES], help_text="DPO: TRL's loss"
    )
    rpo_alpha = forms.FloatField(
        required=False, min_value=0, help_text="DPO: weight of an SFT term on the chosen answers (RPO); 0 = off"
    )
    use_lora = forms.BooleanField(required=False, help_text="LoRA adapter, merged on save")
    seed = forms.IntegerField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].initial = ModelVersion.objects.active()

    def hyperparameters(self) -> dict:
        data = self.cleaned_data
        chosen = {name: data[name] for name in HYPERPARAMETERS if data.get(name) not in (None, "", False)}
        for name in DPO_ONLY if data["kind"] == "sft" else ("subset_size",):
            chosen.pop(name, None)
        return chosen

    def filters(self) -> dict:
        data = self.cleaned_data
        filters = {k: data[k] for k in ("approved_since", "annotator", "source") if data.get(k)}
        filters["include_references"] = data["include_references"]
        filters["include_gold_rewrites"] = data["include_gold_rewrites"]
        if data.get("any_version"):
            filters["any_version"] = True
        return filters
