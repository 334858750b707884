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


def test_promotion_gate_needs_override_with_reason(api, staff, tiny_version):
    worse = ModelVersion.objects.create(name="worse", kind="dpo", directory="worse", parent=tiny_version)
    evaluated(tiny_version, j=0.6)
    evaluated(worse, j=0.4)
    client = api(staff)
    refused = client.post(f"/api/versions/{worse.pk}/activate/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "Activating worse needs an override with a reason: its J 0.400 is lower than tiny's 0.600."
    )
    no_reason = client.post(f"/api/versions/{worse.pk}/activate/", {"override": True}, format="json")
    assert no_reason.status_code == 409
    assert ModelVersion.objects.active() == tiny_version
    ok = client.post(f"/api/versions/{worse.pk}/activate/", {"override": True, "reason": "more polite by eye"}, format="json")
    assert ok.status_code == 200 and ok.json()["is_active"]
    activation = VersionActivation.objects.first()
    assert activation.overridden and activation.reason == "more polite by eye" and activation.activated_by == staff
    # Rolling back to the better version needs no override.
    assert client.post(f"/api/versions/{tiny_version.pk}/activate/", {}, format="json").status_code == 200


def test_low_similarity_is_gated_even_without_an_active_evaluation(api, staff, tiny_version, settings):
    settings.PROMOTION_MIN_SIM = 0.7
    drifting = ModelVersion.objects.create(name="drifting", kind="sft", directory="drifting", parent=tiny_version)
    evaluated(drifting, sim=0.5)
    response = api(staff).post(f"/api/versions/{drifting.pk}/activate/", {}, format="json")
    assert response.status_code == 409 and "its similarity 0.500 is below the threshold 0.700" in response.json()["detail"]


def test_versions_page_shows_metrics_lineage_chart_and_side_by_side(staff, tiny_version, heldout):
    child = ModelVersion.objects.create(name="child", kind="sft", directory="child-dir", parent=tiny_version)
    a = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    b = evaluated(child, j=0.7)
    for out in a.outputs.all():
        b.outputs.create(prompt=out.prompt, output="kinder words", toxicity=0, sta=1, sim=0.7, fl=1, chrf=0.3, j=0.7)
    client = Client()
    client.force_login(staff)
    html = client.get(f"/training/versions/?a={tiny_version.pk}&b={child.pk}").content.decode()
    assert "from tiny" in html and "0.700" in html and "chart-data" in html
    assert "kinder words" in html and "you stupid fool" in html
    compare = client.get(f"/api/evaluations/compare/?a={tiny_version.pk}&b={child.pk}").json()
    assert compare["b"] == "child" and compare["rows"][0]["b"] == "kinder words"


def test_evaluation_api_roles(api, annotator, reviewer, staff, tiny_version, heldout):
    assert api(annotator).get("/api/evaluations/").status_code == 403
    assert api(reviewer).get("/api/evaluations/").status_code == 200
    assert api(reviewer).post("/api/evaluations/", {"version": tiny_version.pk}, format="json").status_code == 403
    created = api(staff).post("/api/evaluations/", {"version": tiny_version.pk, "sample_size": 2}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued"
