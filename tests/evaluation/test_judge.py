"""The trained toxicity judge in the platform: the command, its refusals, and evaluations scoring STA
with it (and reporting the other judge's STA beside it), on the real bundled MiniLM embedder."""
from __future__ import annotations

import json
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotations.importers import PromptRecord, import_prompts
from annotations.models import Prompt
from evaluation import judges
from evaluation.models import Evaluation
from evaluation.services import queue_evaluation, run_evaluation

pytestmark = pytest.mark.django_db(transaction=True)
RUDE = ["idiot", "stupid", "moron", "dumb", "crap", "hell", "damn", "fool", "loser", "trash"]


@pytest.fixture(autouse=True)
def _store(settings, tmp_path, tiny_store):
    """A private model store holding the tiny checkpoint, so judges never leak between tests."""
    shutil.copytree(tiny_store / "tiny", tmp_path / "tiny")
    settings.MODEL_STORE = tmp_path
    settings.EVAL_FLUENCY_LM = ""
    settings.EVAL_SAMPLE_SIZE = 4


@pytest.fixture
def references(db):
    """30 prompts with references, the last 6 held out."""
    import_prompts(
        [PromptRecord(f"you {RUDE[i % 10]} {RUDE[(3 * i + 1) % 10]} number {i}", (f"i think you are wrong about point {i}",))
         for i in range(30)],
        source="test",
    )
    heldout = list(Prompt.objects.order_by("id").values_list("id", flat=True)[24:])
    Prompt.objects.update(is_heldout=False)
    Prompt.objects.filter(id__in=heldout).update(is_heldout=True)
    return heldout


def test_train_judge_without_references_exits_with_a_message(tiny_version):
    with pytest.raises(CommandError, match=r"^No references outside the held-out split: import ParaDetox first"):
        call_command("train_judge")
    with pytest.raises(CommandError, match="--max-per-side must be at least 1"):
        call_command("train_judge", "--max-per-side", "0")


def test_train_judge_without_heldout_references_refuses(tiny_version, prompts):
    with pytest.raises(CommandError, match="No held-out prompts with references to measure the judge on"):
        call_command("train_judge")


def test_train_judge_trains_on_non_heldout_data_and_reports_both_judges(tiny_version, references, capsys, settings):
    call_command("train_judge")
    out = capsys.readouterr().out
    meta = json.loads((settings.MODEL_STORE / "judges" / "trained" / "judge.json").read_text())
    assert meta["train"]["toxic"] == 24 and meta["train"]["neutral"] == 24  # held-out prompts left out
    assert meta["heldout"] == {"toxic": 6, "neutral": 6}
    assert meta["embedder"] == "all-MiniLM-L6-v2" and set(meta["accuracy"]) == {"trained", "profanity-check"}
    assert "trained on 24 toxic and 24 neutral texts" in out
    assert "trained: accuracy " in out and "profanity-check: accuracy " in out and "95% CI" in out
    assert "only the trained judge was right" in out and "McNemar p" in out
    assert meta["features"] == ["all-MiniLM-L6-v2", "profanity-check log-odds"]
    assert judges.trained_judge() == meta


def test_evaluation_scores_sta_with_the_trained_judge_when_configured(tiny_version, references, settings, api, staff):
    call_command("train_judge")
    settings.EVAL_TOXICITY_CLASSIFIER = "trained"
    evaluation = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    assert evaluation.status == "succeeded", evaluation.traceback
    assert evaluation.meta["classifier"] == "trained:trained"
    assert evaluation.meta["other_classifiers"] == {"sta_profanity": "profanity-check"}
    assert {"sta", "sta_profanity"} <= set(evaluation.metrics)
    # With profanity-check scoring STA, the trained judge's STA is reported beside it.
    settings.EVAL_TOXICITY_CLASSIFIER = "profanity-check"
    other = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    assert other.meta["classifier"] == "profanity-check" and "sta_trained" in other.metrics
    listed = api(staff).get(f"/api/evaluations/{other.pk}/").json()
    assert "sta_trained" in listed["metrics"]
    judge = api(staff).get("/api/evaluations/judge/").json()
    assert judge["in_use"] == "profanity-check" and judge["trained"]["accuracy"]["trained"]["n"] == 12
    client = Client()
    client.force_login(staff)
    page = client.get("/training/versions/").content.decode()
    assert "Toxicity judge (STA)" in page and "profanity-check" in page and "95% CI" in page and "STA by the other judge\">trained judge " in page
    assert "McNemar" in page


def test_evaluation_without_a_trained_judge_fails_saying_so(tiny_version, references, settings):
    settings.EVAL_TOXICITY_CLASSIFIER = "trained"
    evaluation = run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk)
    assert evaluation.status == "failed"
    assert "no judge is trained at" in evaluation.error and "run manage.py train_judge" in evaluation.error
    assert not Evaluation.objects.filter(status="succeeded").exists()


def test_gate_finds_no_comparison_between_evaluations_by_different_judges(tiny_version, references):
    from evaluation.services import compare_versions
    from training.models import ModelVersion

    other = ModelVersion.objects.create(name="other", kind="sft", directory="other", parent=tiny_version)
    prompt = Prompt.objects.filter(is_heldout=True).first()
    for version, judge in ((tiny_version, "profanity-check"), (other, "trained:trained")):
        evaluation = Evaluation.objects.create(
            version=version, status="succeeded", sample_size=1, metrics={"j": 0.5, "sim": 0.9}, meta={"classifier": judge}
        )
        evaluation.outputs.create(prompt=prompt, output="kind", toxicity=0, sta=1, sim=0.9, fl=1, j=0.5)
    assert compare_versions(other, tiny_version)["missing"] == (
        "their latest evaluations were scored by different toxicity judges (trained:trained and profanity-check): "
        "evaluate both with the same EVAL_TOXICITY_CLASSIFIER"
    )


def test_staff_queue_judge_training_from_the_api_and_the_worker_trains_it(api, staff, reviewer, tiny_version, references, settings):
    from evaluation.models import JudgeTraining
    from tests.conftest import run_jobs

    assert api(reviewer).post("/api/evaluations/judge/").status_code == 403
    response = api(staff).post("/api/evaluations/judge/")
    assert response.status_code == 201 and response.json()["status"] == "queued"
    again = api(staff).post("/api/evaluations/judge/")
    assert again.status_code == 409 and again.json() == {"detail": f"Judge training {response.json()['id']} is already queued."}
    run_jobs("evaluation")
    training = JudgeTraining.objects.get()
    assert training.status == "succeeded", training.traceback
    assert training.result["train"]["toxic"] == 24 and (settings.MODEL_STORE / "judges" / "trained" / "judge.json").exists()
    shown = api(reviewer).get("/api/evaluations/judge/").json()
    assert shown["latest_training"]["status"] == "succeeded" and shown["trained"]["heldout"]["toxic"] == 6


def test_judge_training_without_references_is_refused(api, staff, tiny_version):
    response = api(staff).post("/api/evaluations/judge/")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("No references outside the held-out split")
    client = Client()
    client.force_login(staff)
    page = client.post("/training/versions/judge/", follow=True).content.decode()
    assert "No references outside the held-out split" in page
