"""Candidate generation: the ready pool, RQ refill jobs on the real Redis, the real bundled model."""
from __future__ import annotations

import pytest
from django.test import override_settings

from annotations import pool
from annotations.models import AnnotationItem, Assignment, Candidate
from training import generation
from core import queues
from tests.conftest import run_jobs
from training.ml.generate import BACKENDS, SampledRewrite
from training.models import ModelVersion
from tests.conftest import PerPromptSampling

pytestmark = pytest.mark.django_db(transaction=True)


def test_refill_job_fills_pool_from_the_tiny_model_via_rq(tiny_version, prompts, settings):
    settings.DETOX_AUTO_REFILL = True
    assert generation.request_refill(tiny_version) is True
    assert generation.request_refill(tiny_version) is False  # deduplicated while one is queued
    run_jobs("generation")
    assert pool.ready_count(tiny_version) >= settings.POOL_TARGET
    candidate = Candidate.objects.first()
    assert candidate.model_version == tiny_version
    assert {"num_candidates", "temperature", "top_p", "max_new_tokens", "backend"} <= set(candidate.decoding)
    assert candidate.decoding["backend"] in BACKENDS or candidate.decoding["backend"].startswith("hf-fp32")
    assert candidate.generation_seconds > 0
    # Lock released after the job: a later refill can be queued once the pool runs low.
    assert queues.acquire_once(f"refill:{tiny_version.pk}:0", 5)


def test_next_item_request_triggers_refill_and_page_fills_without_reload(api, annotator, tiny_version, prompts, settings):
    settings.DETOX_AUTO_REFILL = True
    client = api(annotator)
    first = client.get("/api/annotate/next/").json()
    assert first["status"] == "generating" and first["assignment"] is None
    run_jobs("generation")
    second = client.get("/api/annotate/next/").json()
    assert second["status"] == "ready" and second["assignment"]["candidates"]


def test_refill_stops_when_version_is_deactivated(tiny_version, prompts, stub_generator):
    other = ModelVersion.objects.create(name="other", kind="base", directory="other")
    from training.services import activate_version

    activate_version(version=other, override=True, reason="never evaluated: test of the pool")
    created = generation.refill_pool(tiny_version.pk, generator_factory=lambda path: stub_generator)
    assert created == 0 and stub_generator.calls == 0


def test_an_empty_pool_gets_a_small_first_call_then_full_batches(tiny_version, prompts, stub_generator, settings):
    """Waiting annotators see items after a 4-prompt call; the rest of the pool comes in POOL_BATCH calls."""
    from annotations.importers import PromptRecord, import_prompts
    from annotations.models import Prompt

    import_prompts([PromptRecord(f"shut up, moron number {i}", ()) for i in range(6)], source="test")
    Prompt.objects.update(is_heldout=False)  # 14 prompts in all
    settings.POOL_BATCH = 6
    sizes = []
    sample_batch = stub_generator.sample_batch
    stub_generator.sample_batch = lambda texts, *args, **kwargs: sizes.append(len(texts)) or sample_batch(texts, *args, **kwargs)
    generation.refill_pool(tiny_version.pk, target=12, generator_factory=lambda path: stub_generator)
    assert sizes == [generation.EMPTY_POOL_BATCH, 6, 2]
    assert pool.ready_count(tiny_version) == 12


def test_heldout_prompts_are_never_annotated(tiny_version, prompts, stub_generator):
    from annotations.models import Prompt

    Prompt.objects.filter(id__in=[p.id for p in prompts[:6]]).update(is_heldout=True)
    generation.refill_pool(tiny_version.pk, target=10, generator_factory=lambda path: stub_generator)
    assert not AnnotationItem.objects.filter(prompt__is_heldout=True).exists()
    assert AnnotationItem.objects.count() == 2


def test_refills_go_round_every_waiting_prompt_before_any_gets_a_second_item(tiny_version, prompts, stub_generator, settings):
    """Refills walk the prompts from where the last one stopped: held-out prompts never get an item,
    every other prompt gets one before any gets a second, and a prompt with an open item is skipped."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotations.models import Prompt

    heldout = {p.pk for p in prompts[3:5]}
    Prompt.objects.filter(pk__in=heldout).update(is_heldout=True)
    waiting = {p.pk for p in prompts} - heldout
    settings.POOL_BATCH = 2
    served = []
    for _ in range(len(waiting)):  # two rounds of the six waiting prompts, two items per refill
        generation.refill_pool(tiny_version.pk, target=2, generator_factory=lambda path: stub_generator)
        fresh = AnnotationItem.objects.filter(is_complete=False)
        served += fresh.order_by("id").values_list("prompt_id", flat=True)
        fresh.update(is_complete=True)  # judged: the prompt may get another item
    assert len(served) == 2 * len(waiting)
    assert set(served[: len(waiting)]) == set(served[len(waiting) :]) == waiting

    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: stub_generator)
    open_prompt = AnnotationItem.objects.get(is_complete=False).prompt_id
    with CaptureQueriesContext(connection) as picking:
        picked = [p.pk for p in pool.pick_prompts(tiny_version, 20)]
    assert sorted(picked) == sorted(waiting - {open_prompt})
    assert not any("RANDOM" in q["sql"].upper() for q in picking)  # no sort of the whole table


def test_a_round_of_items_samples_the_whole_import_not_one_stretch_of_the_file(tiny_version):
    """ParaDetox's rows come in runs from one source; a round of items must not be one of those runs."""
    from annotations.models import Prompt

    for source in ("tweets", "comments"):
        for n in range(60):
            prompt = Prompt(source=source)
            prompt.set_text(f"{source} sentence number {n} with a damn word")
            prompt.is_heldout = False
            prompt.save()
    for _ in range(5):  # whatever point the first refill starts at
        queues.get_connection().delete(f"detox:pick-cursor:{tiny_version.pk}")
        sources = [p.source for p in pool.pick_prompts(tiny_version, 40)]
        assert 10 <= sources.count("tweets") <= 30, sources


def test_a_new_versions_first_refill_starts_at_a_random_point_even_after_training_seeded_random(tiny_version, prompts):
    """A process that trains (transformers seeds Python's ``random``) and then refills must not start
    every new version on the same prompts, which its annotators have already judged."""
    import random

    starts = set()
    for _ in range(6):  # 8 prompts: six equal starts by chance would be a 1-in-30,000 event
        queues.get_connection().delete(f"detox:pick-cursor:{tiny_version.pk}")
        random.seed(0)
        starts.add(pool.pick_prompts(tiny_version, 1)[0].pk)
    assert len(starts) > 1


def test_redis_down_gives_a_how_to_fix_message(settings):
    settings.RQ_QUEUES = {name: {**q, "URL": "redis://127.0.0.1:1/0"} for name, q in settings.RQ_QUEUES.items()}
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(queues.RedisUnavailable, match=r"Cannot reach Redis at redis://127.0.0.1:1/0 .*REDIS_URL"):
        queues.check_redis()


def test_check_services_command_reports_redis_down(settings):
    from django.core.management import CommandError, call_command

    settings.RQ_QUEUES = {name: {**q, "URL": "redis://127.0.0.1:1/0"} for name, q in settings.RQ_QUEUES.items()}
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(CommandError, match="Cannot reach Redis"):
        call_command("check_services")


def test_only_one_version_is_active(tiny_version):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(name="second", kind="base", directory="second", is_active=True)


@pytest.mark.slow
def test_bundled_model_is_converted_once_and_serves_real_candidates(tmp_path_factory, annotator, prompts, api):
    """End to end on the real default model: GGUF → safetensors version → sampled candidates via RQ."""
    from training.services import ensure_base_version
    from tests.conftest import shared_model_store

    store = shared_model_store()
    with override_settings(MODEL_STORE=store, DETOX_AUTO_REFILL=True, POOL_TARGET=2, MAX_NEW_TOKENS=24):
        version = ensure_base_version(source="bundled")
        assert version.is_active and (version.path / "model.safetensors").exists()
        assert (version.path / "version.json").exists()
        assert ensure_base_version(source="bundled").pk == version.pk  # idempotent
        client = api(annotator)
        client.get("/api/annotate/next/")
        run_jobs("generation")
        shown = client.get("/api/annotate/next/").json()["assignment"]
    assert shown and Assignment.objects.get(pk=shown["id"]).item.model_version.name == "base-smollm2-135m-instruct"
    texts = [c["text"] for c in shown["candidates"]]
    assert len(set(texts)) == len(texts) >= 2
    assert all(len(t.split()) >= 2 for t in texts)


class CountingStub(PerPromptSampling):
    """Records how many prompts each batched call got; answers with near-duplicates on purpose."""

    def __init__(self, texts=("They are murderers.", "they are Murderers", "they did bad things")):
        self.texts, self.batches = texts, []

    def sample_batch(self, toxics, config, *, seed):
        self.batches.append(len(toxics))
        return super().sample_batch(toxics, config, seed=seed)

    def sample(self, toxic, config, *, seed):
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(self.texts)]


def test_refill_samples_pool_batch_prompts_per_call(tiny_version, prompts, settings):
    settings.POOL_BATCH = 4
    stub = CountingStub()
    created = generation.refill_pool(tiny_version.pk, target=8, generator_factory=lambda path: stub)
    assert created == 8 and stub.batches == [4, 4]


def test_candidates_differing_only_in_case_and_punctuation_are_one_choice(tiny_version, prompts):
    stub = CountingStub()
    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: stub)
    texts = list(Candidate.objects.values_list("text", flat=True))
    assert sorted(texts) == ["They are murderers.", "they did bad things"]
    assert {c.decoding["backend"] for c in Candidate.objects.all()} == {"stub"}


class EchoingStub(PerPromptSampling):
    """Hands the prompt back in its own casing among two real rewrites, as the SFT model sometimes does."""

    def sample(self, toxic, config, *, seed):
        texts = (toxic.capitalize() + ".", "they did bad things", "they were wrong")
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(texts)]


def test_an_echo_of_the_prompt_is_withheld_from_annotators_but_kept_on_the_item_for_dpo(tiny_version, prompts):
    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: EchoingStub())
    item = AnnotationItem.objects.get()
    assert sorted(item.candidates.values_list("text", flat=True)) == ["they did bad things", "they were wrong"]
    assert item.model_echo == item.prompt.text.capitalize() + "."


class WrappingEchoStub(PerPromptSampling):
    """Hands the whole prompt back inside a longer sentence: the evaluation scores that FL 0 too."""

    def sample(self, toxic, config, *, seed):
        texts = (f"Well, {toxic}, to be honest.", "they did bad things", "they were wrong")
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(texts)]


def test_a_candidate_wrapping_the_whole_prompt_is_withheld_as_an_echo(tiny_version, prompts):
    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: WrappingEchoStub())
    item = AnnotationItem.objects.get()
    assert sorted(item.candidates.values_list("text", flat=True)) == ["they did bad things", "they were wrong"]
    assert item.model_echo == f"Well, {item.prompt.text}, to be honest."


class FragmentStub(PerPromptSampling):
    """Answers one sample with a stage direction, as the base model did in 4 of 954 kept candidates."""

    def sample(self, toxic, config, *, seed):
        texts = ("*laughs*", "they did bad things", "they were wrong")
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(texts)]


def test_a_one_word_fragment_of_a_sentence_never_reaches_annotators(tiny_version, prompts):
    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: FragmentStub())
    item = AnnotationItem.objects.get()
    assert sorted(item.candidates.values_list("text", flat=True)) == ["they did bad things", "they were wrong"]
    assert item.model_echo == ""


def test_resampling_of_too_similar_candidates_is_bounded(tiny_version, prompts):
    stub = CountingStub(texts=("Stop it.", "stop it", "STOP IT!"))
    generation.refill_pool(tiny_version.pk, target=1, generator_factory=lambda path: stub)
    assert stub.batches == [1, 1, 1]  # three attempts, then the single distinct candidate is kept
    assert Candidate.objects.count() == 1


def test_two_generation_workers_fill_the_pool_without_sampling_a_prompt_twice(tiny_version, prompts, settings):
    """Two real RQ worker processes on the shared Redis and database split one refill between them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3") and ":memory:" in str(db["NAME"]):
        pytest.skip("worker subprocesses cannot see an in-memory SQLite test database")
    from tests.training.test_training import _database_url

    settings.DETOX_AUTO_REFILL, settings.GENERATION_WORKERS, settings.POOL_TARGET = True, 2, len(prompts) - 2
    assert generation.request_refill(tiny_version)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(db),
        "REDIS_URL": settings.REDIS_URL,
        "MODEL_STORE": str(settings.MODEL_STORE),
        "POOL_TARGET": str(settings.POOL_TARGET),
        "POOL_BATCH": "2",
        "MAX_NEW_TOKENS": "8",
        "GENERATION_BACKEND": "hf-fp32",
        "TORCH_NUM_THREADS": "1",
    }
    command = [sys.executable, "manage.py", "rqworker", "generation", "--burst", "--worker-class", "rq.SimpleWorker"]
    root = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    logs = [w.communicate(timeout=300)[0].decode(errors="replace") for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    assert all("refill_pool" in log for log in logs), "each worker took one of the two refill jobs"
    per_prompt = AnnotationItem.objects.filter(model_version=tiny_version).values_list("prompt_id", flat=True)
    assert len(per_prompt) == len(set(per_prompt)) >= settings.POOL_TARGET


def test_a_refill_takes_every_core_unless_a_training_run_is_running(tiny_version, monkeypatch):
    from training.models import TrainingRun

    monkeypatch.setattr("training.ml.device.available_cores", lambda: 2)
    assert generation.generation_thread_budget() == 2
    TrainingRun.objects.create(kind="sft", parent=tiny_version, output_directory="sft-busy", status="running")
    assert generation.generation_thread_budget() == 1


def test_pool_checks_from_requests_are_throttled_per_version(tiny_version, prompts, settings):
    settings.DETOX_AUTO_REFILL = True
    assert generation.pool_may_be_low(tiny_version) is True  # queues a refill
    generation.queues.release(f"refill:{tiny_version.pk}:0")
    assert generation.pool_may_be_low(tiny_version) is False  # within POOL_CHECK_SECONDS: not even counted
