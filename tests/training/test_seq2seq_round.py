"""A tiny T5 (encoder-decoder) through the platform: register, sample candidates, SFT, DPO, evaluate and
activate, through the same services, RQ jobs and pages as the causal model."""
from __future__ import annotations

import time
import uuid

import pytest
from django.core.management import call_command

from annotations import services as annotation_services
from annotations.importers import PromptRecord, import_prompts
from annotations.models import Candidate, PreferencePair, Prompt
from annotations.review import approve_pairs
from evaluation.models import Evaluation
from tests.conftest import run_jobs
from training import generation
from training.ml.checkpoints import read_version_file
from training.ml.families import SEQ2SEQ, family_of, task_prefix
from training.ml.tiny import build_tiny_seq2seq_checkpoint
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"max_steps": 2, "batch_size": 2, "logging_steps": 1}


@pytest.fixture
def t5_source(tmp_path):
    """A fine-tuned T5 checkpoint directory as a team brings it (here: a tiny random one)."""
    return build_tiny_seq2seq_checkpoint(tmp_path / f"detoxifier-t5-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def round_prompts(db, settings):
    settings.EVAL_FLUENCY_LM = ""  # fluency checks only: no LM load in a fast test
    settings.EVAL_SAMPLE_SIZE = 3
    settings.CANDIDATES_PER_ITEM = 3
    import_prompts([PromptRecord(f"you are a stupid idiot number {i}", (f"you are wrong {i}",)) for i in range(4)], source="t")
    Prompt.objects.update(is_heldout=False)
    import_prompts([PromptRecord(f"shut up you fool number {i}", (f"please be quiet {i}",)) for i in range(3)], source="h")
    Prompt.objects.filter(source="h").update(is_heldout=True)


def test_tiny_t5_round_register_sample_sft_dpo_evaluate_activate(t5_source, round_prompts, annotator, reviewer, staff, api, capsys):
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()

    call_command("register_base_model", "--source", str(t5_source))
    base = ModelVersion.objects.get(source=str(t5_source))
    assert base.is_active and family_of(base.path) == SEQ2SEQ and read_version_file(base.path)["family"] == SEQ2SEQ
    assert f"base version {base.name} ready" in capsys.readouterr().out
    run_jobs("evaluation")  # registering queued an evaluation of the base
    lap("register + evaluate base")

    assert generation.refill_pool(base.pk, target=4) == 4
    item_sizes = [c for c in Candidate.objects.filter(model_version=base).values_list("item", flat=True)]
    assert max(item_sizes.count(i) for i in set(item_sizes)) == 3  # best of 3
    assert {c.decoding["backend"] for c in Candidate.objects.all()} == {"ct2-int8"}  # the default backend, in provenance
    lap("sample 4 items x 3 candidates")

    while (shown := annotation_services.next_assignment(user=annotator)) is not None:
        annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    approve_pairs(reviewer=reviewer, pairs=PreferencePair.objects.all())
    assert PreferencePair.objects.approved().count() >= 4

    client = api(staff)
    response = client.post("/api/training-runs/", {"kind": "sft", "hyperparameters": FAST}, format="json")
    assert response.status_code == 201, response.content
    run_jobs("training")
    sft = TrainingRun.objects.get(pk=response.json()["id"])
    assert sft.status == "succeeded", sft.traceback
    lap("sft")

    body = {"kind": "dpo", "parent": sft.result_version.pk, "hyperparameters": {**FAST, "learning_rate": 1e-3}, "filters": {"any_version": True}}
    response = client.post("/api/training-runs/", body, format="json")
    assert response.status_code == 201, response.content
    run_jobs("training")
    dpo = TrainingRun.objects.get(pk=response.json()["id"])
    assert dpo.status == "succeeded", dpo.traceback
    version = dpo.result_version
    assert "final_rewards/margins" in version.metrics and family_of(version.path) == SEQ2SEQ
    assert [version.parent, version.parent.parent] == [sft.result_version, base]  # lineage
    lap("dpo")

    run_jobs("evaluation")
    evaluations = Evaluation.objects.filter(version__in=[sft.result_version, version])
    assert [e.status for e in evaluations] == ["succeeded", "succeeded"], [e.traceback for e in evaluations]
    assert all(0 <= e.metrics["j"] <= 1 and e.outputs.count() == 3 for e in evaluations)
    lap("evaluate sft + dpo")

    # A random tiny model may lose to its parent; staff override the gate with a reason, as for any model.
    activated = client.post(f"/api/versions/{version.pk}/activate/", {"reason": "t5 round", "override": True}, format="json")
    assert activated.status_code == 200, activated.content
    assert generation.refill_pool(version.pk, target=2) >= 1
    assert Candidate.objects.filter(model_version=version).exists()
    lap("activate + sample")
    print("tiny-T5 round timings (s):", timings)


def test_detoxifierai_migration_register_t5_import_preferences_train_dpo(t5_source, round_prompts, reviewer, tmp_path, capsys):
    """What a team coming from DetoxifierAI runs: their T5 directory and user_preferences.json, then a DPO round."""
    import json

    from django.test import override_settings

    entries = [
        {"toxic": "you are a stupid idiot", "chosen": "you are not very smart", "rejected": ["you idiot", "stupid"]},
        {"toxic": "what the hell are you doing", "chosen": "what are you doing", "rejected": ["hell no"]},
    ]
    (tmp_path / "user_preferences.json").write_text(json.dumps(entries))
    call_command("register_base_model", "--source", str(t5_source), "--prompt-prefix", "detoxify this: ")
    with override_settings(HELDOUT_PERCENT=0):
        call_command("import_preferences", str(tmp_path / "user_preferences.json"), "--format", "detoxifierai")
    approve_pairs(reviewer=reviewer, pairs=PreferencePair.objects.filter(source="imported"))
    call_command("train", "dpo", "--source", "imported", "--max-steps", "2", "--batch-size", "2", "--beta", "0.1")
    run = TrainingRun.objects.get()
    assert run.status == "succeeded", run.traceback
    assert run.data_snapshot["count"] == 3 + 2 and run.hyperparameters["beta"] == 0.1  # + each input rejected
    assert family_of(run.result_version.path) == SEQ2SEQ and run.result_version.parent.source == str(t5_source)
    assert task_prefix(run.result_version.path) == "detoxify this: "  # the prefix it was fine-tuned with, inherited
