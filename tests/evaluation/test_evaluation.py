"""Automatic evaluation of versions, the promotion gate, and the versions page."""
from __future__ import annotations

import pytest
from django.test import Client

from annotations.importers import PromptRecord, import_prompts
from annotations.models import Prompt
from evaluation.models import Evaluation
from evaluation.services import queue_evaluation, run_evaluation
from tests.conftest import run_jobs
from training.models import ModelVersion, VersionActivation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_eval(settings):
    settings.EVAL_FLUENCY_LM = ""  # checks only: no LM load in fast tests
    settings.EVAL_SAMPLE_SIZE = 4


@pytest.fixture
def heldout(db):
    import_prompts(
        [PromptRecord(f"you stupid fool number {i}", (f"you are mistaken {i}",)) for i in range(6)], source="test"
    )
    Prompt.objects.update(is_heldout=True)
    return list(Prompt.objects.all())


def evaluated(version: ModelVersion, **metrics) -> Evaluation:
    values = {"sta": 0.9, "sim": 0.8, "fl": 0.9, "chrf": 0.5, "j": 0.6, "n": 100, **metrics}
    return Evaluation.objects.create(version=version, status="succeeded", sample_size=100, metrics=values)


def test_evaluate_command_scores_tiny_model_on_heldout(tiny_version, heldout, capsys):
    from django.core.management import call_command

    call_command("evaluate", "tiny", "--sample-size", "4", "--seed", "3")
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "succeeded", evaluation.traceback
    assert set(evaluation.metrics) >= {"sta", "sim", "fl", "chrf", "j", "n"} and evaluation.metrics["n"] == 4
    assert evaluation.seed == 3 and evaluation.meta["classifier"] and evaluation.outputs.count() == 4
    assert all(0 <= o.j <= 1 for o in evaluation.outputs.all())
    assert "J=" in capsys.readouterr().out


def test_evaluation_is_reproducible(tiny_version, heldout):
    first = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    second = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    assert first.metrics == {**second.metrics}
    assert [o.output for o in first.outputs.all()] == [o.output for o in second.outputs.all()]


def test_evaluate_command_errors(tiny_version):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No such version: nope"):
        call_command("evaluate", "nope")
    with pytest.raises(CommandError, match="No held-out prompts with references"):
        call_command("evaluate", "tiny")


def test_registered_version_is_evaluated_by_the_evaluation_queue(staff, tiny_version, prompts, heldout, api):
    Prompt.objects.filter(id__in=[p.id for p in prompts]).update(is_heldout=False)
    response = api(staff).post("/api/training-runs/", {"kind": "sft", "hyperparameters": {"max_steps": 1}}, format="json")
    run_jobs("training")
    version = ModelVersion.objects.get(parent=tiny_version)
    evaluation = Evaluation.objects.get(version=version)
    assert evaluation.status == "queued"
    run_jobs("evaluation")
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.traceback
    assert response.status_code == 201


@pytest.fixture
def gate_prompts(db):
    import_prompts([PromptRecord(f"you utter fool number {i}", (f"you are wrong {i}",)) for i in range(60)], source="gate")
    return list(Prompt.objects.filter(source="gate"))


def evaluated_on(version: ModelVersion, prompts, js, **metrics) -> Evaluation:
    """A finished evaluation of ``version`` with one scored output per prompt (J as given, SIM = J)."""
    evaluation = evaluated(version, j=sum(js) / len(js), **metrics)
    for prompt, j in zip(prompts, js):
        evaluation.outputs.create(prompt=prompt, output="kind words", toxicity=0, sta=1, sim=j, fl=1, chrf=0.3, j=j)
    return evaluation


def noisy(centre: float, n: int, seed: int) -> list[float]:
    import random

    rng = random.Random(seed)
    return [min(1.0, max(0.0, centre + rng.gauss(0, 0.15))) for _ in range(n)]


def test_promotion_gate_refuses_a_significant_drop_without_override_and_reason(api, staff, tiny_version, gate_prompts):
    worse = ModelVersion.objects.create(name="worse", kind="dpo", directory="worse", parent=tiny_version)
    active_js = noisy(0.6, 60, seed=1)
    evaluated_on(tiny_version, gate_prompts, active_js)
    evaluated_on(worse, gate_prompts, [j - 0.2 for j in active_js])
    client = api(staff)
    refused = client.post(f"/api/versions/{worse.pk}/activate/", {}, format="json")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith("Activating worse needs an override with a reason: its J 0.")
    assert "is lower than tiny's 0." in detail and ": ΔJ -0.200 (95% CI -0.200 to -0.200, 60 prompts)." in detail
    no_reason = client.post(f"/api/versions/{worse.pk}/activate/", {"override": True}, format="json")
    assert no_reason.status_code == 409
    assert ModelVersion.objects.active() == tiny_version
    ok = client.post(f"/api/versions/{worse.pk}/activate/", {"override": True, "reason": "more polite by eye"}, format="json")
    assert ok.status_code == 200 and ok.json()["is_active"]
    activation = VersionActivation.objects.first()
    assert activation.overridden and activation.reason == "more polite by eye" and activation.activated_by == staff
    # Rolling back to the better version needs no override.
    back = client.post(f"/api/versions/{tiny_version.pk}/activate/", {}, format="json")
    assert back.status_code == 200 and back.json()["promotion_warning"] is None


def test_a_difference_within_noise_passes_with_a_warning(api, staff, tiny_version, gate_prompts):
    candidate = ModelVersion.objects.create(name="candidate", kind="dpo", directory="candidate", parent=tiny_version)
    active_js = noisy(0.6, 60, seed=1)
    evaluated_on(tiny_version, gate_prompts, active_js)
    # The same J on average, up on half the prompts and down on the other half.
    evaluated_on(candidate, gate_prompts, [j + (0.05 if i % 2 else -0.05) for i, j in enumerate(active_js)])
    listed = {v["name"]: v for v in api(staff).get("/api/versions/").json()["results"]}
    versus = listed["candidate"]["versus_active"]
    assert versus["baseline"] == "tiny" and versus["n"] == 60 and versus["resamples"] == 2000
    j = versus["deltas"]["j"]
    assert j["low"] < j["delta"] < j["high"] and j["low"] < 0 < j["high"]
    assert set(versus["deltas"]) == {"j", "sta", "sim", "fl"} and listed["tiny"]["versus_active"] is None
    response = api(staff).post(f"/api/versions/{candidate.pk}/activate/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["promotion_warning"].startswith("ΔJ ") and "against tiny is within noise." in response.json()["promotion_warning"]
    client = Client()
    client.force_login(staff)
    page = client.post(f"/training/versions/{tiny_version.pk}/activate/", follow=True).content.decode()
    assert "within noise" in page and "ΔJ vs active" in page


@pytest.mark.parametrize("only_evaluated", ["tiny", "candidate"])
def test_gate_never_passes_without_a_comparison_unless_overridden(api, staff, tiny_version, gate_prompts, only_evaluated):
    candidate = ModelVersion.objects.create(name="candidate", kind="dpo", directory="candidate", parent=tiny_version)
    evaluated_on(candidate if only_evaluated == "candidate" else tiny_version, gate_prompts, noisy(0.9, 60, seed=3))
    missing = "tiny" if only_evaluated == "candidate" else "candidate"
    response = api(staff).post(f"/api/versions/{candidate.pk}/activate/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Activating candidate needs an override with a reason: there is no comparison with tiny: "
        f"{missing} has no finished evaluation."
    )
    ok = api(staff).post(f"/api/versions/{candidate.pk}/activate/", {"override": True, "reason": "checked by hand"}, format="json")
    assert ok.status_code == 200


def test_gate_refuses_evaluations_without_shared_prompts(api, staff, tiny_version, gate_prompts):
    candidate = ModelVersion.objects.create(name="candidate", kind="dpo", directory="candidate", parent=tiny_version)
    evaluated_on(tiny_version, gate_prompts[:30], noisy(0.5, 30, seed=4))
    evaluated_on(candidate, gate_prompts[30:], noisy(0.9, 30, seed=5))
    response = api(staff).post(f"/api/versions/{candidate.pk}/activate/", {}, format="json")
    assert response.status_code == 409
    assert "the evaluations of candidate and tiny share no prompts" in response.json()["detail"]


def test_evaluate_action_on_versions_page_and_api(api, annotator, reviewer, staff, tiny_version, heldout):
    client = Client()
    client.force_login(staff)
    page = client.post(f"/training/versions/{tiny_version.pk}/evaluate/", follow=True).content.decode()
    assert "Evaluation of tiny on 4 held-out sentences queued." in page and "evaluation queued" in page
    assert api(annotator).post(f"/api/versions/{tiny_version.pk}/evaluate/").status_code == 403
    assert api(reviewer).post(f"/api/versions/{tiny_version.pk}/evaluate/").status_code == 403
    created = api(staff).post(f"/api/versions/{tiny_version.pk}/evaluate/")
    assert created.status_code == 201 and created.json()["status"] == "queued" and created.json()["version"] == "tiny"
    assert Evaluation.objects.filter(version=tiny_version, status="queued").count() == 2


def test_default_evaluation_covers_the_whole_heldout_split(tiny_version, heldout, settings):
    settings.EVAL_SAMPLE_SIZE = 0
    assert queue_evaluation(version=tiny_version, enqueue=False).sample_size == len(heldout) == 6


def test_importing_heldout_references_evaluates_versions_never_evaluated(tiny_version, tmp_path, settings):
    import json
    from io import StringIO

    from django.core.management import call_command

    settings.HELDOUT_PERCENT = 100
    evaluated_child = ModelVersion.objects.create(name="child", kind="sft", directory="child-dir", parent=tiny_version)
    evaluated(evaluated_child)
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"toxic": f"shut up fool {i}", "references": [f"please stop {i}"]}) + "\n" for i in range(3)))
    out = StringIO()
    call_command("import_prompts", str(path), "--format", "jsonl", stdout=out)
    assert "queued evaluation of 1 version(s) never evaluated: tiny" in out.getvalue()
    assert list(Evaluation.objects.filter(status="queued").values_list("version__name", flat=True)) == ["tiny"]
    call_command("import_prompts", str(path), "--format", "jsonl", stdout=StringIO())
    assert Evaluation.objects.filter(status="queued").count() == 1  # queued once


def test_low_similarity_is_gated_even_without_an_active_evaluation(api, staff, tiny_version, settings):
    settings.PROMOTION_MIN_SIM = 0.7
    drifting = ModelVersion.objects.create(name="drifting", kind="sft", directory="drifting", parent=tiny_version)
    evaluated(drifting, sim=0.5)
    response = api(staff).post(f"/api/versions/{drifting.pk}/activate/", {}, format="json")
    assert response.status_code == 409 and "its similarity 0.500 is below the threshold 0.700" in response.json()["detail"]


def test_versions_page_shows_metrics_lineage_chart_and_side_by_side(staff, tiny_version, heldout):
    child = ModelVersion.objects.create(
        name="child", kind="sft", directory="child-dir", parent=tiny_version, hyperparameters={"epochs": 1.0, "use_lora": False}
    )
    a = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    b = evaluated(child, j=0.7)
    for out in a.outputs.all():
        b.outputs.create(prompt=out.prompt, output="kinder words", toxicity=0, sta=1, sim=0.7, fl=1, chrf=0.3, j=0.7)
    client = Client()
    client.force_login(staff)
    html = client.get(f"/training/versions/?a={tiny_version.pk}&b={child.pk}").content.decode()
    assert "from tiny" in html and "0.700" in html and "chart-data" in html
    assert "kinder words" in html and "you stupid fool" in html
    assert "<code>epochs</code>: 1" in html and "<code>use_lora</code>: False" in html  # not a Python dict
    assert "ΔJ vs active" in html and ("significant" in html or "within noise" in html)  # child vs tiny, same sentences
    compare = client.get(f"/api/evaluations/compare/?a={tiny_version.pk}&b={child.pk}").json()
    assert compare["b"] == "child" and compare["rows"][0]["b"] == "kinder words"


def test_evaluation_api_roles(api, annotator, reviewer, staff, tiny_version, heldout):
    assert api(annotator).get("/api/evaluations/").status_code == 403
    assert api(reviewer).get("/api/evaluations/").status_code == 200
    assert api(reviewer).post("/api/evaluations/", {"version": tiny_version.pk}, format="json").status_code == 403
    created = api(staff).post("/api/evaluations/", {"version": tiny_version.pk, "sample_size": 2}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued"


def test_versions_page_and_api_show_each_versions_model_family(api, staff, tiny_version, settings, tmp_path):
    import json
    import shutil

    shutil.copytree(settings.MODEL_STORE / "tiny", tmp_path / "tiny")
    settings.MODEL_STORE = tmp_path
    (tmp_path / "t5-base").mkdir()
    (tmp_path / "t5-base" / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    ModelVersion.objects.create(name="t5-base", kind="base", directory="t5-base")
    ModelVersion.objects.create(name="gone", kind="sft", directory="gone", parent=tiny_version)
    listed = {v["name"]: v["family"] for v in api(staff).get("/api/versions/").json()["results"]}
    assert listed == {"tiny": "causal", "t5-base": "seq2seq", "gone": None}
    client = Client()
    client.force_login(staff)
    page = client.get("/training/versions/").content.decode()
    assert "<th>Family</th>" in page
    assert 'title="encoder-decoder (T5/BART-style)">seq2seq</span>' in page and 'title="decoder-only">causal</span>' in page
    assert 'title="no config.json in the checkpoint directory">–</span>' in page
