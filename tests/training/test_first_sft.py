"""The first model without asking: the offer, the API and command, the automatic start after an import,
and activation after both evaluations only when it beats the base."""
from __future__ import annotations

import random

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotations.importers import PromptRecord, import_prompts
from annotations.models import Prompt
from evaluation.models import Evaluation
from evaluation.services import settle_first_sft_runs
from tests.conftest import run_jobs
from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)
OFFER = "Train the first model"


def page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    return client.get(url).content.decode()


def test_offer_appears_only_for_a_lone_base_with_references(api, staff, tiny_version):
    client = api(staff)
    assert client.get("/api/training-runs/first/").json() == {
        "offered": False,
        "reason": "No human references are imported yet: import ParaDetox first (manage.py import_prompts).",
    }
    assert OFFER not in page(staff, "/training/runs/")
    import_prompts([PromptRecord(f"you stupid fool {i}", (f"you are wrong {i}",)) for i in range(8)], source="test")
    Prompt.objects.update(is_heldout=False)
    assert client.get("/api/training-runs/first/").json() == {"offered": True, "reason": None}
    assert OFFER in page(staff, "/training/runs/") and OFFER in page(staff, "/training/versions/")
    ModelVersion.objects.create(name="sft-by-hand", kind="sft", directory="sft-by-hand", parent=tiny_version)
    assert client.get("/api/training-runs/first/").json()["reason"] == (
        "A trained version (sft-by-hand) already exists; start further runs on the training page."
    )
    assert OFFER not in page(staff, "/training/versions/")


def test_api_starts_one_first_sft_and_refuses_a_second(api, staff, annotator, tiny_version, prompts):
    assert api(annotator).post("/api/training-runs/first/").status_code == 403
    response = api(staff).post("/api/training-runs/first/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["is_first_sft"] and body["parent"] == "tiny" and body["status"] == "queued"
    assert body["hyperparameters"] == {"subset_size": 800, "epochs": 1.0, "batch_size": 8}
    assert body["data_filters"]["include_gold_rewrites"] is False
    again = api(staff).post("/api/training-runs/first/")
    assert again.status_code == 409
    assert again.json() == {"detail": f"SFT run {body['id']} is already queued; the first model needs no other."}
    assert TrainingRun.objects.count() == 1


def test_api_refuses_without_references(api, staff, tiny_version):
    response = api(staff).post("/api/training-runs/first/")
    assert response.status_code == 409 and "No human references are imported yet" in response.json()["detail"]


def test_the_database_refuses_a_second_live_first_sft(staff, tiny_version, prompts):
    from django.db import IntegrityError

    services.start_first_sft(enqueue=False)
    with pytest.raises(IntegrityError):
        TrainingRun.objects.create(kind="sft", parent=tiny_version, output_directory="twin", is_first_sft=True)


def test_page_button_queues_the_run(staff, tiny_version, prompts):
    client = Client()
    client.force_login(staff)
    response = client.post("/training/runs/first/", follow=True)
    run = TrainingRun.objects.get()
    assert run.is_first_sft and f"First SFT run {run.pk} queued" in response.content.decode()
    again = client.post("/training/runs/first/", follow=True).content.decode()
    assert "is already queued" in again and TrainingRun.objects.count() == 1


def test_import_with_auto_first_sft_queues_exactly_one_run(tiny_version, tmp_path, settings, capsys):
    settings.AUTO_FIRST_SFT_MIN_PROMPTS = 5
    data = tmp_path / "paradetox.tsv"
    data.write_text("toxic\tneutral1\n" + "".join(f"you dumb idiot {i}\tyou are wrong {i}\n" for i in range(40)))
    settings.AUTO_FIRST_SFT = False
    call_command("import_prompts", str(data))
    assert not TrainingRun.objects.exists()
    settings.AUTO_FIRST_SFT = True
    call_command("import_prompts", str(data))
    call_command("import_prompts", str(data))
    run = TrainingRun.objects.get()
    assert run.is_first_sft and run.parent == tiny_version
    assert f"queued the first SFT run {run.pk} from tiny (AUTO_FIRST_SFT)" in capsys.readouterr().out


def test_auto_first_sft_waits_for_enough_references(tiny_version, prompts, settings):
    settings.AUTO_FIRST_SFT = True
    settings.AUTO_FIRST_SFT_MIN_PROMPTS = 100
    assert services.start_first_sft_after_import() == []
    settings.AUTO_FIRST_SFT_MIN_PROMPTS = 8
    assert len(services.start_first_sft_after_import()) == 1


def test_bootstrap_first_sft_queues_once_and_stays_idempotent(tiny_version, prompts, settings, capsys, tiny_store):
    settings.BASE_MODEL = "tiny-source"
    tiny_version.directory = "base-tiny-source"  # what register_base_model looks for: nothing is converted
    tiny_version.save()
    (tiny_store / "base-tiny-source").symlink_to(tiny_store / "tiny")
    try:
        call_command("bootstrap", "--bootstrap")
        call_command("bootstrap", "--first-sft")
    finally:
        (tiny_store / "base-tiny-source").unlink()
    out = capsys.readouterr().out
    run = TrainingRun.objects.get()
    assert f"Queued the first SFT run {run.pk} from tiny" in out
    assert f"No first SFT queued: SFT run {run.pk} is already queued" in out
    with pytest.raises(CommandError, match="already queued"):
        call_command("train_first_model")


def test_first_sft_trains_on_the_quick_path_here(staff, tiny_version, prompts):
    run = services.start_first_sft(user=staff)
    run_jobs("training")
    run.refresh_from_db()
    assert run.status == "succeeded", run.traceback
    assert run.hyperparameters["subset_size"] == 800 and run.device.startswith("cpu")
    assert run.result_version.parent == tiny_version and not run.result_version.is_active
    assert run.auto_activation == ""  # nothing evaluated yet


# --- activation after both evaluations ---------------------------------------------------------------


@pytest.fixture
def heldout(db):
    import_prompts([PromptRecord(f"you utter fool number {i}", (f"you are wrong {i}",)) for i in range(60)], source="gate")
    Prompt.objects.update(is_heldout=True)
    return list(Prompt.objects.filter(source="gate"))


@pytest.fixture
def first_run(tiny_version):
    version = ModelVersion.objects.create(name="sft-first", kind="sft", directory="sft-first", parent=tiny_version)
    return TrainingRun.objects.create(
        kind="sft", parent=tiny_version, status="succeeded", result_version=version, output_directory="sft-first",
        is_first_sft=True,
    )


def evaluated_on(version: ModelVersion, prompts, js) -> Evaluation:
    """A finished evaluation with one output per prompt (J as given, SIM 0.9)."""
    evaluation = Evaluation.objects.create(
        version=version, status="succeeded", sample_size=len(js),
        metrics={"sta": 1, "sim": 0.9, "fl": 1, "chrf": 0.5, "j": sum(js) / len(js), "n": len(js)},
    )
    for prompt, j in zip(prompts, js):
        evaluation.outputs.create(prompt=prompt, output="kind words", toxicity=0, sta=1, sim=0.9, fl=1, chrf=0.3, j=j)
    return evaluation


def noisy(centre: float, n: int = 60, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [min(1.0, max(0.0, centre + rng.gauss(0, 0.1))) for _ in range(n)]


def test_first_model_is_activated_after_both_evaluations_when_it_beats_the_base(api, staff, tiny_version, heldout, first_run):
    evaluated_on(first_run.result_version, heldout, noisy(0.6))
    # The base has no evaluation yet: the decision waits, and an evaluation of the base is queued.
    assert settle_first_sft_runs(first_run.result_version) == []
    assert Evaluation.objects.filter(version=tiny_version, status="queued").exists()
    Evaluation.objects.filter(version=tiny_version, status="queued").delete()
    evaluated_on(tiny_version, heldout, noisy(0.1, seed=2))
    assert settle_first_sft_runs(tiny_version) == [first_run]
    first_run.refresh_from_db()
    assert ModelVersion.objects.active() == first_run.result_version
    assert first_run.auto_activation.startswith("Activated: it beats tiny, ΔJ +0.")
    listed = {v["name"]: v for v in api(staff).get("/api/versions/").json()["results"]}
    assert listed["sft-first"]["auto_activation"] == first_run.auto_activation and listed["tiny"]["auto_activation"] is None
    assert api(staff).get(f"/api/training-runs/{first_run.pk}/").json()["auto_activation"] == first_run.auto_activation
    assert "First model: Activated: it beats tiny" in page(staff, "/training/versions/")
    assert "Activated: it beats tiny" in page(staff, f"/training/runs/{first_run.pk}/")
    # Decided once: a later evaluation changes nothing.
    assert settle_first_sft_runs(tiny_version) == []


@pytest.mark.parametrize(
    "candidate_j, reason",
    [
        (-0.3, "Not activated: Activating sft-first needs an override with a reason: its J 0."),
        (0.0, "Not activated: it does not clearly beat tiny (ΔJ "),
    ],
)
def test_first_model_stays_inactive_when_it_does_not_beat_the_base(tiny_version, heldout, first_run, candidate_j, reason):
    base_js = noisy(0.5, seed=3)
    evaluated_on(tiny_version, heldout, base_js)
    shift = [j + (candidate_j if candidate_j else (0.05 if i % 2 else -0.05)) for i, j in enumerate(base_js)]
    evaluated_on(first_run.result_version, heldout, shift)
    settle_first_sft_runs(first_run.result_version)
    first_run.refresh_from_db()
    assert ModelVersion.objects.active() == tiny_version
    assert first_run.auto_activation.startswith(reason), first_run.auto_activation


def test_first_model_is_not_activated_over_a_version_staff_chose(tiny_version, heldout, first_run):
    other = ModelVersion.objects.create(name="other-base", kind="base", directory="other-base")
    ModelVersion.objects.filter(pk=tiny_version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=other.pk).update(is_active=True)
    evaluated_on(tiny_version, heldout, noisy(0.1))
    evaluated_on(first_run.result_version, heldout, noisy(0.8))
    settle_first_sft_runs(first_run.result_version)
    first_run.refresh_from_db()
    assert first_run.auto_activation == (
        "Not activated: other-base is active instead of tiny, so staff decide on the versions page."
    )
    assert ModelVersion.objects.active() == other


def test_a_finished_evaluation_settles_the_first_model(settings, tiny_version, heldout, first_run, tiny_store):
    """The real evaluation job, on the tiny checkpoint, decides the run when it finishes."""
    import shutil

    settings.EVAL_FLUENCY_LM = ""
    settings.EVAL_SAMPLE_SIZE = 4
    shutil.copytree(tiny_store / "tiny", tiny_store / "sft-first", dirs_exist_ok=True)
    try:
        evaluated_on(tiny_version, heldout, [0.0] * len(heldout))
        from evaluation.services import queue_evaluation

        queue_evaluation(version=first_run.result_version)
        run_jobs("evaluation")
        first_run.refresh_from_db()
        assert Evaluation.objects.get(version=first_run.result_version).status == "succeeded"
        assert first_run.auto_activation.startswith(("Activated: it beats tiny", "Not activated: "))
    finally:
        shutil.rmtree(tiny_store / "sft-first", ignore_errors=True)


def test_a_failed_base_evaluation_is_queued_once_more_then_the_decision_says_so(api, staff, tiny_version, heldout, first_run, settings):
    from evaluation.services import queue_evaluation, run_evaluation

    evaluated_on(first_run.result_version, heldout, noisy(0.6))
    settings.EVAL_TOXICITY_CLASSIFIER = "trained"  # no judge is trained: every evaluation fails at once
    assert run_evaluation(queue_evaluation(version=tiny_version, enqueue=False).pk).status == "failed"
    again = Evaluation.objects.get(version=tiny_version, status="queued")  # the first failure is retried
    first_run.refresh_from_db()
    assert first_run.auto_activation == ""
    assert run_evaluation(again.pk).status == "failed"
    first_run.refresh_from_db()
    assert first_run.auto_activation.startswith(
        "Not activated: the evaluation of tiny (its parent) failed 2 times (last error: RuntimeError: "
        "EVAL_TOXICITY_CLASSIFIER=trained but no judge is trained at "
    )
    assert first_run.auto_activation.endswith("Evaluate it again on the versions page once that is fixed, then activate by hand.")
    assert not tiny_version.evaluations.unfinished().exists() and ModelVersion.objects.active() == tiny_version
    assert api(staff).get(f"/api/training-runs/{first_run.pk}/").json()["auto_activation"] == first_run.auto_activation
    assert "Not activated: the evaluation of tiny (its parent) failed 2 times" in page(staff, f"/training/runs/{first_run.pk}/")
    assert "First model: Not activated: the evaluation of tiny" in page(staff, "/training/versions/")


def test_an_evaluation_whose_worker_died_counts_as_failed_for_the_first_model(tiny_version, heldout, first_run):
    from core import jobs

    evaluated_on(first_run.result_version, heldout, noisy(0.6))
    dead = Evaluation.objects.create(
        version=tiny_version, sample_size=4, status="running", worker_pid=2**22 + 12345,
        worker_host=__import__("socket").gethostname(),
    )
    assert jobs.reap_all() == {"evaluation.evaluation": [dead.pk]}
    assert Evaluation.objects.filter(version=tiny_version, status="queued").count() == 1  # queued once more
