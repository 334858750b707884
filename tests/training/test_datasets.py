"""Training data from the database: cleaning, reconciling annotators, on-policy pairs, held-out prompts."""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from annotations import exports
from annotations.models import AnnotationItem, Assignment, Candidate, Judgement, PreferencePair, Prompt
from core.roles import make_system_account
from training import services
from training.datasets import DataFilters, dpo_data, dpo_records, finish_sft_cleaning, sft_data, sft_records
from training.ml.data import read_jsonl
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def approved_pair(user, prompt, chosen, rejected, version, *, own_rewrite=False, echo=""):
    """An approved pair as the annotation flow leaves it: an item of ``version`` (with the pool's
    withheld ``echo``), a judgement, the pair."""
    item = AnnotationItem.objects.create(prompt=prompt, model_version=version, model_echo=echo)
    rejected_candidate = Candidate.objects.create(item=item, model_version=version, text=rejected, seed=1)
    chosen_candidate = None if own_rewrite else Candidate.objects.create(item=item, model_version=version, text=chosen, seed=1)
    order = [c.id for c in (chosen_candidate, rejected_candidate) if c]
    assignment = Assignment.objects.create(user=user, item=item, candidate_order=order)
    judgement = Judgement.objects.create(
        assignment=assignment, user=user, item=item,
        kind="none" if own_rewrite else "choice", own_rewrite=chosen if own_rewrite else "", chosen_candidate=chosen_candidate,
    )
    return PreferencePair.objects.create(
        judgement=judgement, prompt=prompt, model_version=version, chosen_candidate=chosen_candidate,
        rejected_candidate=rejected_candidate, chosen_text=chosen, rejected_text=rejected, original_chosen_text=chosen,
        is_own_rewrite=own_rewrite, status="approved", reviewed_at=timezone.now(),
    )


@pytest.fixture
def older(tiny_version):
    return ModelVersion.objects.create(name="older", kind="base", directory="older-dir")


def test_sft_drops_echoes_at_start_and_still_toxic_references_in_the_worker(tiny_version, settings):
    Prompt.objects.create(text="you are a stupid idiot", text_hash="a", source="test", references=[
        "You are a stupid idiot.",  # the input's very words
        "you are a stupid idiot!!",  # the same after normalising
        "you are a fucking idiot",  # still toxic
        "you are wrong",
    ])
    data = sft_data(DataFilters())
    assert [r["completion"] for r in data.records] == ["you are a fucking idiot", "you are wrong"]
    assert data.cleaning["references"] == {"references": 4, "dropped_echo": 2, "toxicity_filter": "pending"}
    run = services.start_training_run(kind="sft", parent=tiny_version, enqueue=False)
    assert run.data_snapshot["count"] == 2 and run.data_snapshot["cleaning"] == data.cleaning
    # The worker's half, with evaluation's judge: profanity-check while "trained" names no trained judge.
    settings.EVAL_TOXICITY_CLASSIFIER = "trained"
    finish_sft_cleaning(run)
    run.refresh_from_db()
    assert run.data_snapshot["cleaning"]["references"] == {
        "references": 4, "dropped_echo": 2, "dropped_toxic": 1, "toxicity_filter": "profanity-check", "toxicity_threshold": 0.5,
    }
    assert run.data_snapshot["count"] == 1 and [r["completion"] for r in read_jsonl(run.snapshot_path)] == ["you are wrong"]
    done = dict(run.data_snapshot)
    finish_sft_cleaning(run)  # a retried run is not cleaned twice
    assert run.data_snapshot == done


@pytest.mark.django_db(transaction=True)
def test_sft_cleaning_uses_the_trained_judge_evaluation_scores_sta_with(tiny_version, settings, tmp_path, tiny_store):
    """A judge in the trained judge's format (``training.ml.judge``), its weights set to flag sentences
    close to one rude sentence without a swear word, which profanity-check lets through."""
    import shutil

    import numpy as np

    from training.executor import execute_run
    from training.ml.checkpoints import read_version_file
    from training.ml.evaluate import load_embedder
    from training.ml.judge import JUDGE_FILE, WEIGHTS_FILE

    shutil.copytree(tiny_store / "tiny", tmp_path / "tiny")
    settings.MODEL_STORE = tmp_path
    settings.EVAL_TOXICITY_CLASSIFIER = "trained"
    rude = "nobody cares what you think"
    judge = tmp_path / "judges" / "trained"
    judge.mkdir(parents=True)
    direction = np.asarray(load_embedder()([rude])[0], dtype=np.float32)  # P(toxic) >= 0.5 at cosine >= 0.8
    np.savez(judge / WEIGHTS_FILE, coef=20 * direction, intercept=np.array([-16.0], dtype=np.float32))
    (judge / JUDGE_FILE).write_text(json.dumps(
        {"kind": "embedding-logreg", "embedder": "all-MiniLM-L6-v2", "config": {"with_profanity": False}}
    ))
    Prompt.objects.create(text="what you think is stupid", text_hash="r", source="test", references=[rude, "you are mistaken about this"])
    run = services.start_training_run(kind="sft", parent=tiny_version, hyperparameters={"max_steps": 1, "batch_size": 1}, enqueue=False)
    assert run.data_snapshot["count"] == 2 and run.data_snapshot["cleaning"]["references"]["toxicity_filter"] == "pending"
    run = execute_run(run.pk)
    assert run.status == "succeeded", run.traceback
    assert run.data_snapshot["cleaning"]["references"] == {
        "references": 2, "dropped_echo": 0, "dropped_toxic": 1, "toxicity_filter": "trained:trained", "toxicity_threshold": 0.5,
    }
    assert [r["completion"] for r in read_jsonl(run.snapshot_path)] == ["you are mistaken about this"]
    version = run.result_version
    assert version.data_snapshot == run.data_snapshot == read_version_file(version.path)["data_snapshot"]
    assert [r["completion"] for r in read_jsonl(version.path / "data.jsonl")] == ["you are mistaken about this"]


def test_dpo_pairs_are_deduplicated_and_reconciled_across_annotators(make_user, tiny_version):
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    other = Prompt.objects.create(text="damn you", text_hash="q", source="test")
    kept = approved_pair(ann, prompt, "please be quiet", "shut up", tiny_version)
    approved_pair(bob, prompt, "Please be quiet.", "shut up", tiny_version)  # same order, normalised alike
    approved_pair(cat, prompt, "shut up", "please be quiet", tiny_version)  # outvoted 2:1
    approved_pair(ann, other, "hello", "go away", tiny_version)
    approved_pair(bob, other, "go away", "hello", tiny_version)  # 1:1, both dropped
    data = dpo_data(DataFilters(reject_input=False), parent=tiny_version)
    assert [(r["chosen"], r["rejected"]) for r in data.records] == [("please be quiet", "shut up")]
    assert data.records[0]["pair_id"] == kept.id and len(data.records[0]["pair_ids"]) == 2
    assert data.cleaning["pairs"] == {
        "pairs": 5, "kept": 1, "duplicates": 1, "outvoted": 1, "conflicts_dropped": 2, "identical_dropped": 0,
    }


def test_an_importers_judgements_each_count_as_one_vote(make_user, tiny_version):
    """An imported file's judgements come from many raters under one system account: two of them
    outvote one annotator instead of tying with her as a single voter."""
    importer, ann = make_user("detoxifierai-import"), make_user("ann")
    make_system_account(importer)
    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    approved_pair(importer, prompt, "please be quiet", "shut up", tiny_version)
    approved_pair(importer, prompt, "Please be quiet.", "shut up", tiny_version)
    approved_pair(ann, prompt, "shut up", "please be quiet", tiny_version)
    data = dpo_data(DataFilters(reject_input=False), parent=tiny_version)
    assert [(r["chosen"], r["rejected"]) for r in data.records] == [("please be quiet", "shut up")]
    assert data.cleaning["pairs"]["outvoted"] == 1 and data.cleaning["pairs"]["conflicts_dropped"] == 0


def test_dpo_uses_the_parents_pairs_unless_any_version(staff, tiny_version, older):
    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    mine = approved_pair(staff, prompt, "please be quiet", "shut up", tiny_version)
    theirs = approved_pair(staff, prompt, "be quiet please", "shut it", older)
    assert [r["pair_id"] for r in dpo_records(DataFilters(reject_input=False), parent=tiny_version)] == [mine.id]
    widened = DataFilters(any_version=True, reject_input=False)
    assert [r["pair_id"] for r in dpo_records(widened, parent=tiny_version)] == [mine.id, theirs.id]
    run = services.start_training_run(kind="dpo", parent=tiny_version, enqueue=False)
    assert run.data_snapshot["pair_ids"] == [mine.id]
    run = services.start_training_run(kind="dpo", parent=tiny_version, filters={"any_version": True}, enqueue=False)
    assert run.data_snapshot["pair_ids"] == [mine.id, theirs.id]


def test_each_chosen_answer_also_rejects_the_toxic_input_unless_turned_off(staff, make_user, tiny_version, api):
    """The pool never shows annotators a candidate that repeats the prompt, so DPO adds the pair that
    rejects it: once per prompt and chosen answer, never when the chosen answer is itself an echo."""
    from django.core.management import call_command

    from training.forms import StartRunForm

    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    first = approved_pair(staff, prompt, "please be quiet", "shut up", tiny_version)
    approved_pair(make_user("bob"), prompt, "please be quiet", "be quiet fool", tiny_version)
    approved_pair(staff, prompt, "Shut up, fool!", "shut up", tiny_version)  # an echo chosen: nothing added
    data = dpo_data(DataFilters(), parent=tiny_version)
    added = [r for r in data.records if r.get("derived")]
    assert [(r["chosen"], r["rejected"]) for r in added] == [("please be quiet", "shut up fool")]
    assert added[0]["pair_ids"] == [first.id] and data.cleaning["pairs"]["input_rejections"] == 1
    assert not any(r.get("derived") for r in dpo_records(DataFilters(reject_input=False), parent=tiny_version))

    run = services.start_training_run(kind="dpo", parent=tiny_version, enqueue=False)
    assert run.data_snapshot["count"] == len(data.records) == 4
    call_command("train", "dpo", "--no-input-rejections", "--queue")
    assert TrainingRun.objects.latest("pk").data_filters["reject_input"] is False
    form = StartRunForm({"kind": "dpo", "parent": tiny_version.pk})
    assert form.is_valid(), form.errors
    assert form.filters()["reject_input"] is False  # an unticked box (the page shows it ticked)
    response = api(staff).post("/api/training-runs/", {"kind": "dpo", "filters": {"reject_input": False}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data_filters"]["reject_input"] is False


def test_the_input_rejection_rejects_the_models_own_echo_where_the_pool_kept_one(staff, tiny_version, api):
    """The model re-cases ParaDetox's lower-cased prompts: rejecting its echo as it wrote it pushes down
    what it would actually say; without a kept echo, or with the switch off, the stored prompt is rejected."""
    from django.core.management import call_command

    from training.forms import StartRunForm

    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    other = Prompt.objects.create(text="damn you", text_hash="q", source="test")
    approved_pair(staff, prompt, "please be quiet", "be quiet fool", tiny_version, echo="Shut up, fool!")
    approved_pair(staff, other, "forget you", "darn you", tiny_version)
    data = dpo_data(DataFilters(), parent=tiny_version)
    rejected = {r["prompt"]: r["rejected"] for r in data.records if r.get("derived")}
    assert rejected == {"shut up fool": "Shut up, fool!", "damn you": "damn you"}
    assert data.cleaning["pairs"]["own_echo_rejections"] == 1
    plain = dpo_data(DataFilters(reject_own_echo=False), parent=tiny_version)
    assert {r["rejected"] for r in plain.records if r.get("derived")} == {"shut up fool", "damn you"}

    call_command("train", "dpo", "--no-own-echo-rejections", "--queue")
    assert TrainingRun.objects.latest("pk").data_filters["reject_own_echo"] is False
    form = StartRunForm({"kind": "dpo", "parent": tiny_version.pk, "reject_input": "on"})
    assert form.is_valid(), form.errors
    assert form.filters()["reject_own_echo"] is False
    response = api(staff).post("/api/training-runs/", {"kind": "dpo", "filters": {"reject_own_echo": False}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data_filters"]["reject_own_echo"] is False


def test_with_any_version_the_parents_own_echo_is_rejected(staff, tiny_version, older):
    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    approved_pair(staff, prompt, "please be quiet", "be quiet fool", tiny_version, echo="Shut up, fool!")
    approved_pair(staff, prompt, "be quiet please", "quiet, fool", older, echo="Shut up fool.")
    for parent, echo in ((tiny_version, "Shut up, fool!"), (older, "Shut up fool.")):
        data = dpo_data(DataFilters(any_version=True), parent=parent)
        assert {r["rejected"] for r in data.records if r.get("derived")} == {echo}


def test_empty_on_policy_dpo_data_says_how_to_widen(staff, tiny_version, older):
    from core.actions import ActionRefused

    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    approved_pair(staff, prompt, "please be quiet", "shut up", older)
    with pytest.raises(ActionRefused, match="Only pairs sampled from tiny are used by default; any_version widens this."):
        services.start_training_run(kind="dpo", parent=tiny_version, enqueue=False)


def test_any_version_from_command_form_and_api(staff, tiny_version, older, api):
    from django.core.management import call_command

    from training.forms import StartRunForm

    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    approved_pair(staff, prompt, "please be quiet", "shut up", older)
    call_command("train", "dpo", "--any-version", "--queue")
    form = StartRunForm({"kind": "dpo", "parent": tiny_version.pk, "any_version": "on"})
    assert form.is_valid() and form.filters()["any_version"] is True
    response = api(staff).post("/api/training-runs/", {"kind": "dpo", "filters": {"any_version": True}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data_filters"]["any_version"] is True


def test_heldout_prompts_reach_no_training_or_export_rows(staff, tiny_version, tmp_path):
    train = Prompt.objects.create(text="you are a stupid idiot", text_hash="t", source="test", references=["you are wrong"])
    held = Prompt.objects.create(text="shut up you fool", text_hash="h", source="test", references=["please be quiet"])
    for prompt in (train, held):
        approved_pair(staff, prompt, f"kind words for {prompt.id}", prompt.text, tiny_version)
        approved_pair(staff, prompt, f"own rewrite for {prompt.id}", f"bad words {prompt.id}", tiny_version, own_rewrite=True)
    Prompt.objects.filter(pk=held.pk).update(is_heldout=True)  # marked held out after it was annotated

    def texts(rows):
        return json.dumps(list(rows), default=str)

    sft = texts(sft_records(DataFilters()))
    dpo = texts(dpo_records(DataFilters(), parent=tiny_version))
    exported = texts(exports.preference_records(exports.pairs_for_export(status="all")))
    exported_sft = texts(exports.sft_records(exports.pairs_for_export(), include_references=True))
    exported_judgements = texts(exports.judgement_records(exports.judgements_for_export()))
    result = exports.export_dataset(tmp_path / "export", include_references=True)
    files = "".join(p.read_text() for p in result.directory.glob("*.jsonl"))
    for rows in (sft, dpo, exported, exported_sft, exported_judgements, files):
        assert train.text in rows
        assert held.text not in rows and f"for {held.id}" not in rows


def test_input_rejections_can_be_limited_to_prompts_the_model_echoed(staff, tiny_version, api):
    """Once the model rarely echoes, rejecting the input on every prompt keeps pushing it away from the
    input's wording (SIM); the option adds that pair only where the pool withheld the model's echo."""
    from django.core.management import call_command

    from training.forms import StartRunForm

    prompt = Prompt.objects.create(text="shut up fool", text_hash="p", source="test")
    other = Prompt.objects.create(text="damn you", text_hash="q", source="test")
    approved_pair(staff, prompt, "please be quiet", "be quiet fool", tiny_version, echo="Shut up, fool!")
    approved_pair(staff, other, "forget you", "darn you", tiny_version)
    data = dpo_data(DataFilters(reject_input_only_echoed=True), parent=tiny_version)
    assert [(r["prompt"], r["rejected"]) for r in data.records if r.get("derived")] == [("shut up fool", "Shut up, fool!")]
    stored = dpo_data(DataFilters(reject_input_only_echoed=True, reject_own_echo=False), parent=tiny_version)
    assert [r["rejected"] for r in stored.records if r.get("derived")] == ["shut up fool"]

    call_command("train", "dpo", "--input-rejections-only-echoed", "--queue")
    assert TrainingRun.objects.latest("pk").data_filters["reject_input_only_echoed"] is True
    form = StartRunForm({"kind": "dpo", "parent": tiny_version.pk, "reject_input": "on", "reject_input_only_echoed": "true"})
    assert form.is_valid(), form.errors
    assert form.filters()["reject_input_only_echoed"] is True
    assert 'value="true" selected' in str(form["reject_input_only_echoed"])
    response = api(staff).post(
        "/api/training-runs/", {"kind": "dpo", "filters": {"reject_input_only_echoed": True}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["data_filters"]["reject_input_only_echoed"] is True


def test_input_rejections_go_everywhere_after_sft_and_only_to_echoes_after_dpo_unless_set(staff, tiny_version, api):
    """The automatic rule of the measured chains: round 1 on an SFT parent rejects the input on every prompt
    (the model still copies often), later rounds on a DPO parent only where the model echoed (keeps SIM)."""
    from django.core.management import call_command

    from training.forms import StartRunForm

    dpo_parent = ModelVersion.objects.create(
        name="dpo-round-1", kind=ModelVersion.Kind.DPO, directory="dpo-round-1", parent=tiny_version
    )
    for version in (tiny_version, dpo_parent):
        echoed = Prompt.objects.create(text=f"shut up fool {version.pk}", text_hash=f"p{version.pk}", source="test")
        other = Prompt.objects.create(text=f"damn you {version.pk}", text_hash=f"q{version.pk}", source="test")
        approved_pair(staff, echoed, "please be quiet", "be quiet fool", version, echo=f"Shut up, fool {version.pk}!")
        approved_pair(staff, other, "forget you", "darn you", version)

    def rejected_prompts(filters: DataFilters, parent: ModelVersion) -> tuple[list[str], str]:
        data = dpo_data(filters, parent=parent)
        return sorted(r["prompt"] for r in data.records if r.get("derived")), data.cleaning["pairs"]["input_rejections_on"]

    assert tiny_version.kind != ModelVersion.Kind.DPO
    after_sft = rejected_prompts(DataFilters(), tiny_version)
    assert after_sft == ([f"damn you {tiny_version.pk}", f"shut up fool {tiny_version.pk}"],
                         "every prompt (automatic: the parent was not trained by DPO)")
    after_dpo = rejected_prompts(DataFilters(), dpo_parent)
    assert after_dpo == ([f"shut up fool {dpo_parent.pk}"],
                         "only prompts the model echoed (automatic: the parent was trained by DPO)")
    assert rejected_prompts(DataFilters(reject_input_only_echoed=False), dpo_parent)[0] == [
        f"damn you {dpo_parent.pk}", f"shut up fool {dpo_parent.pk}"]

    call_command("train", "dpo", "--input-rejections-everywhere", "--queue")
    assert TrainingRun.objects.latest("pk").data_filters["reject_input_only_echoed"] is False
    call_command("train", "dpo", "--queue")
    assert TrainingRun.objects.latest("pk").data_filters["reject_input_only_echoed"] is None
    form = StartRunForm({"kind": "dpo", "parent": dpo_parent.pk, "reject_input": "on", "reject_input_only_echoed": "unknown"})
    assert form.is_valid(), form.errors
    assert "reject_input_only_echoed" not in form.filters()
    response = api(staff).post(
        "/api/training-runs/", {"kind": "dpo", "filters": {"reject_input_only_echoed": False}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["data_filters"]["reject_input_only_echoed"] is False
