"""Candidate generation: the ready pool, RQ refill jobs on the real Redis, the real bundled model."""
from __future__ import annotations

import pytest
from django.test import override_settings

from annotations import pool
from annotations.models import AnnotationItem, Assignment, Candidate
from training import generation
from core import queues
from tests.conftest import run_jobs
from training.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)


def test_refill_job_fills_pool_from_the_tiny_model_via_rq(tiny_version, prompts, settings):
    settings.DETOX_AUTO_REFILL = True
    assert generation.request_refill(tiny_version) is True
    assert generation.request_refill(tiny_version) is False  # deduplicated while one is queued
    run_jobs("generation")
    assert pool.ready_count(tiny_version) >= settings.POOL_TARGET
    candidate = Candidate.objects.first()
    assert candidate.model_version == tiny_version
    assert set(candidate.decoding) == {"num_candidates", "temperature", "top_p", "max_new_tokens"}
    assert candidate.generation_seconds > 0
    # Lock released after the job: a later refill can be queued once the pool runs low.
    assert queues.acquire_once(f"refill:{tiny_version.pk}", 5)


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


def test_heldout_prompts_are_never_annotated(tiny_version, prompts, stub_generator):
    from annotations.models import Prompt

    Prompt.objects.filter(id__in=[p.id for p in prompts[:6]]).update(is_heldout=True)
    generation.refill_pool(tiny_version.pk, target=10, generator_factory=lambda path: stub_generator)
    assert not AnnotationItem.objects.filter(prompt__is_heldout=True).exists()
    assert AnnotationItem.objects.count() == 2


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
