"""Training runs end to end on a tiny model with a real RQ worker on the real Redis and database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from safetensors.torch import load_file

from annotations import services as annotation_services
from training import generation
from annotations.models import Candidate, Judgement, PreferencePair
from annotations.review import approve_pairs
from tests.conftest import run_jobs
from training.executor import execute_run
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"max_steps": 3, "batch_size": 2, "logging_steps": 1}


def weights(version: ModelVersion) -> dict:
    return load_file(str(version.path / "model.safetensors"))


def differs(a: ModelVersion, b: ModelVersion) -> bool:
    wa, wb = weights(a), weights(b)
    return any(not (wa[k] == wb[k]).all() for k in wa)


@pytest.fixture
def approved_pairs(annotator, reviewer, filled_pool):
    for _ in range(3):
        shown = annotation_services.next_assignment(user=annotator)
        annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, own_rewrite="please do not say that")
    approve_pairs(reviewer=reviewer, pairs=PreferencePair.objects.all())
    return list(PreferencePair.objects.approved())


def start(api_client, **body):
    response = api_client.post("/api/training-runs/", body, format="json")
    return response


def test_sft_run_via_api_registers_a_new_version_that_serves_candidates(api, staff, tiny_version, prompts, settings):
    client = api(staff)
    response = start(client, kind="sft", hyperparameters=FAST)
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    assert response.json()["status"] == "queued" and response.json()["data_snapshot"]["count"] == 8
    run_jobs("training")
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "succeeded", run.traceback
    version = run.result_version
    assert version.parent == tiny_version and version.kind == "sft" and not version.is_active
    assert version.data_snapshot["hash"] == run.data_snapshot["hash"]
    assert version.hyperparameters["max_steps"] == 3 and version.device.startswith("cpu")
    assert (version.path / "version.json").exists() and (version.path / "data.jsonl").exists()
    assert run.loss_history and run.step == 3 == run.total_steps
    assert differs(version, tiny_version)
    # Staff activate it; the pool refills from the new version; old candidates keep their provenance.
    # Not evaluated yet, so there is no comparison with the active version: only an override activates it.
    refused = client.post(f"/api/versions/{version.pk}/activate/", {"reason": "try sft"}, format="json")
    assert refused.status_code == 409 and "there is no comparison with tiny" in refused.json()["detail"]
    activated = client.post(f"/api/versions/{version.pk}/activate/", {"reason": "try sft", "override": True}, format="json")
    assert activated.status_code == 200
    created = generation.refill_pool(version.pk, target=2)
    assert created >= 1
    assert Candidate.objects.filter(model_version=version).exists()


def test_dpo_run_on_approved_pairs_changes_weights(staff, approved_pairs, tiny_version, api):
    client = api(staff)
    response = start(client, kind="dpo", hyperparameters={**FAST, "learning_rate": 1e-3}, filters={"annotator": "ann"})
    assert response.status_code == 201, response.content
    assert response.json()["data_snapshot"]["pair_ids"] == sorted(p.id for p in approved_pairs)
    run_jobs("training")
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.status == "succeeded", run.traceback
    assert differs(run.result_version, tiny_version)
    assert ModelVersion.objects.active() == tiny_version  # a new version is never activated by itself


def test_sft_uses_approved_gold_rewrites(staff, approved_pairs, tiny_version):
    from training.datasets import DataFilters, sft_records

    records = sft_records(DataFilters(include_references=False))
    assert [r["completion"] for r in records] == ["please do not say that"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "dpo", "hyperparameters": {"beta": -1}}, "Invalid training settings: beta must be a positive number, got -1"),
        ({"kind": "sft", "hyperparameters": {"learning_rate": 0}}, "Invalid training settings: learning_rate must be a positive number, got 0"),
        ({"kind": "sft", "hyperparameters": {"warp_speed": 9}}, "Invalid training settings: unknown hyperparameter(s) for sft: warp_speed"),
        ({"kind": "sft", "hyperparameters": {"DEFAULT_LEARNING_RATE": 1}}, "Invalid training settings: unknown hyperparameter(s) for sft: DEFAULT_LEARNING_RATE"),
        ({"kind": "dpo"}, "No training data: no approved preference pairs match these filters."),
    ],
)
def test_invalid_settings_or_empty_data_are_refused_before_queueing(api, staff, tiny_version, prompts, body, message):
    response = start(api(staff), **body)
    assert response.status_code == 400
    assert response.json()["detail"] == message
    assert TrainingRun.objects.count() == 0
    import django_rq

    assert django_rq.get_queue("training").count == 0


def test_annotators_cannot_start_runs_or_activate(api, annotator, tiny_version, prompts):
    client = api(annotator)
    assert start(client, kind="sft").status_code == 403
    assert client.post(f"/api/versions/{tiny_version.pk}/activate/").status_code == 403


def test_cancel_queued_run(api, staff, tiny_version, prompts):
    client = api(staff)
    run_id = start(client, kind="sft", hyperparameters=FAST).json()["id"]
    cancelled = client.post(f"/api/training-runs/{run_id}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    run_jobs("training")
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "cancelled" and run.result_version is None
    assert not (Path(settings.MODEL_STORE) / run.output_directory).exists()
    again = client.post(f"/api/training-runs/{run_id}/cancel/")
    assert again.status_code == 409 and again.json()["detail"] == f"Run {run_id} already finished (cancelled)."


def test_cancel_while_running_stops_at_next_step_and_registers_nothing(staff, tiny_version, prompts):
    from training import services

    run = services.start_training_run(kind="sft", parent=tiny_version, hyperparameters={**FAST, "max_steps": 50}, enqueue=False)
    versions_before = ModelVersion.objects.count()

    def cancel_after_first_step(update):
        if update.step == 1:
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    run = execute_run(run.pk, echo=cancel_after_first_step)
    assert run.status == "cancelled" and run.step < 50
    assert ModelVersion.objects.count() == versions_before
    assert not list(Path(settings.MODEL_STORE).glob(f"*{run.output_directory}*"))


def test_failed_run_keeps_traceback_and_leaves_everything_intact(staff, tiny_version, prompts, tmp_path, settings):
    import shutil

    from training import services

    broken = ModelVersion.objects.create(name="broken", kind="base", directory="broken-copy")
    shutil.copytree(tiny_version.path, broken.path)
    (broken.path / "model.safetensors").write_bytes(b"not weights")
    run = services.start_training_run(kind="sft", parent=broken, hyperparameters=FAST, enqueue=False)
    run = execute_run(run.pk)
    assert run.status == "failed"
    assert run.error and "Traceback" in run.traceback
    assert ModelVersion.objects.active() == tiny_version
    assert not (Path(settings.MODEL_STORE) / run.output_directory).exists()
    shutil.rmtree(broken.path)


def test_killed_worker_is_detected_and_run_marked_failed(staff, tiny_version, prompts, settings, annotator, filled_pool):
    from training import services

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3") and ":memory:" in str(db["NAME"]):
        pytest.skip("a worker subprocess cannot see an in-memory SQLite test database")
    judgements_before = Judgement.objects.count()
    run = services.start_training_run(kind="sft", parent=tiny_version, hyperparameters={**FAST, "max_steps": 100000})
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(db),
        "REDIS_URL": settings.REDIS_URL,
        "MODEL_STORE": str(settings.MODEL_STORE),
        "TORCH_NUM_THREADS": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "training", "--burst", "--worker-class", "rq.SimpleWorker"],
        env=env, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            run.refresh_from_db()
            if run.status == "running" and run.step >= 2:
                break
            time.sleep(0.5)
        assert run.status == "running", f"worker never started the run ({run.status})"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    (Path(settings.MODEL_STORE) / f".tmp-{run.output_directory}-dead").mkdir()  # what a kill mid-save leaves
    assert services.reap_dead_runs() == [run.pk]
    run.refresh_from_db()
    assert run.status == "failed" and "worker" in run.error
    assert not list(Path(settings.MODEL_STORE).glob(f".tmp-{run.output_directory}*"))
    assert ModelVersion.objects.active() == tiny_version
    assert Judgement.objects.count() == judgements_before
    assert execute_run(run.pk).status == "failed"  # never re-run


def _database_url(db: dict) -> str:
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_train_command_runs_here_with_progress(staff, tiny_version, prompts, capsys):
    from django.core.management import call_command

    call_command("train", "sft", "--max-steps", "2", "--batch-size", "2")
    out = capsys.readouterr()
    assert "succeeded: new version sft-" in out.out
    assert TrainingRun.objects.get().status == "succeeded"


def test_train_command_reports_bad_input(tiny_version, prompts):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="Invalid training settings: batch_size must be a positive number, got 0"):
        call_command("train", "sft", "--batch-size", "0")
    with pytest.raises(CommandError, match="No such parent version: nope"):
        call_command("train", "dpo", "--parent", "nope")


def test_training_pages_for_staff(staff, tiny_version, prompts):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    response = client.post("/training/runs/", {"kind": "sft", "parent": tiny_version.pk, "max_steps": 2, "include_references": "on"}, follow=True)
    html = response.content.decode()
    assert "queued on 8 rows" in html and "uPlot" in html
    response = client.post("/training/runs/", {"kind": "dpo", "parent": tiny_version.pk}, follow=True)
    assert "No training data" in response.content.decode()
    assert "Activation history" in client.get("/training/versions/").content.decode()


def test_run_page_shows_rows_actually_used_and_settings_as_key_value_lines(staff, tiny_version, prompts):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    response = client.post(
        "/training/runs/",
        {"kind": "sft", "parent": tiny_version.pk, "max_steps": 2, "subset_size": 3, "include_references": "on"},
        follow=True,
    )
    html = response.content.decode()
    assert "queued on 3 rows" in html  # the seeded sample, not the 8 rows it is drawn from
    assert "3 training rows (a seeded sample of 8)" in html
    assert "<code>subset_size</code>: 3" in html and "<code>max_steps</code>: 2" in html
    assert "{&#x27;" not in html and "{'" not in html  # no Python dict on the page
    assert "<code>references.dropped_echo</code>: 0" in html
    run = TrainingRun.objects.get()
    assert run.rows_used == 3 and run.data_snapshot["count"] == 8


def test_switches_send_only_a_change_from_their_default(staff, tiny_version, prompts):
    """A checkbox always posts a value: only one that differs from the config's default becomes a
    setting, so a switch that defaults to on can be turned off from the form, and from the CLI."""
    from django.core.management import call_command

    from training.forms import StartRunForm
    from training.ml.sft import SFTRunConfig

    default = SFTRunConfig.group_by_length
    base = {"kind": "sft", "parent": tiny_version.pk, "include_references": "on"}
    unticked, ticked = StartRunForm(base), StartRunForm({**base, "group_by_length": "on"})
    assert unticked.is_valid() and ticked.is_valid()
    assert unticked.hyperparameters() == ({"group_by_length": False} if default else {})
    assert ticked.hyperparameters() == ({} if default else {"group_by_length": True})
    assert StartRunForm().fields["group_by_length"].initial is default
    call_command("train", "sft", "--no-group-by-length", "--queue")
    call_command("train", "sft", "--group-by-length", "--max-steps", "1", "--queue")
    first, second = TrainingRun.objects.order_by("pk")
    assert first.hyperparameters["group_by_length"] is False and second.hyperparameters["group_by_length"] is True


def test_start_run_form_cli_and_api_describe_the_config_dataclasses():
    """Every tunable field of the run configs is offered with its real default, nowhere typed twice."""
    import dataclasses

    from training.api.serializers import StartRunSerializer
    from training.forms import StartRunForm
    from training.management.commands.train import Command
    from training.ml.dpo import DPORunConfig
    from training.ml.sft import SFTRunConfig

    form = StartRunForm()
    cli = Command().create_parser("manage.py", "train").format_help()
    api_help = str(StartRunSerializer().fields["hyperparameters"].help_text)
    fields = {f.name for c in (SFTRunConfig, DPORunConfig) for f in dataclasses.fields(c)}
    for name in fields - {"parent_dir", "output_dir", "logging_steps", "lora_r", "lora_alpha"}:
        assert name in form.fields and f"--{name.replace('_', '-')}" in cli and f"{name} (" in api_help
    batch = f"SFT {SFTRunConfig.batch_size}, DPO {DPORunConfig.batch_size}"
    assert batch in form.fields["batch_size"].help_text and batch in api_help
    assert form.fields["beta"].help_text.startswith("DPO: ") and f"DPO {DPORunConfig.beta:g}" in form.fields["beta"].help_text
