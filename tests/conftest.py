"""Shared fixtures: real PostgreSQL/SQLite (DATABASE_URL) and real Redis on a separate database,
a tiny in-process model for fast generation, users in each role."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file from ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: ParaDetox data lives in ../shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """A model store holding one tiny random checkpoint (directory ``tiny``), built once per session."""
    from training.ml.tiny import build_tiny_checkpoint

    store = tmp_path_factory.mktemp("model-store")
    build_tiny_checkpoint(store / "tiny")
    return store


def redis_url_for_tests() -> str:
    """Tests use their own Redis database so they never touch a running platform's queues."""
    from django.conf import settings

    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") > 2 else settings.REDIS_URL
    return os.environ.get("TEST_REDIS_URL", base + "/15")


@pytest.fixture(autouse=True)
def _isolated_settings(settings, tiny_store):
    url = redis_url_for_tests()
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {name: {**queue, "URL": url} for name, queue in settings.RQ_QUEUES.items()}
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}  # flushed with the queues
    settings.MODEL_STORE = tiny_store
    settings.DETOX_AUTO_REFILL = False
    settings.POOL_TARGET = 4
    settings.MAX_NEW_TOKENS = 12
    settings.GOLD_RATE = 0  # tests that need gold items turn it on
    settings.AUTO_FIRST_SFT = False  # tests of the first model turn it on


@pytest.fixture(autouse=True)
def _clean_redis(_isolated_settings):
    from core.queues import get_connection

    connection = get_connection()
    connection.flushdb()
    yield
    connection.flushdb()


@pytest.fixture
def tiny_version(db):
    from training.models import ModelVersion

    return ModelVersion.objects.create(name="tiny", kind="base", directory="tiny", is_active=True)


@pytest.fixture
def make_user(db, django_user_model):
    from core.roles import make_reviewer

    def make(username: str, role: str = "annotator"):
        user = django_user_model.objects.create_user(
            username=username, password="pw-for-tests-1", is_staff=role == "admin", is_superuser=role == "admin"
        )
        if role == "reviewer":
            make_reviewer(user)
        return user

    return make


@pytest.fixture
def annotator(make_user):
    return make_user("ann")


@pytest.fixture
def reviewer(make_user):
    return make_user("rev", "reviewer")


@pytest.fixture
def staff(make_user):
    return make_user("boss", "admin")


@pytest.fixture
def api(client):
    """A logged-in JSON client factory: ``api(user)``."""
    from rest_framework.test import APIClient

    def make(user=None):
        c = APIClient()
        if user is not None:
            c.force_authenticate(user)
        return c

    return make


@pytest.fixture
def prompts(db):
    from annotations.importers import PromptRecord, import_prompts
    from annotations.models import Prompt

    texts = [f"you are a stupid idiot number {i}" for i in range(8)]
    import_prompts([PromptRecord(t, (f"you are wrong {i}",)) for i, t in enumerate(texts)], source="test")
    Prompt.objects.update(is_heldout=False)
    return list(Prompt.objects.all())


class PerPromptSampling:
    """Test stand-ins for a model implement ``sample``; this adds the batched call and the provenance
    that the pool and the arena use, with the backend label ``stub``."""

    backend = "stub"

    def sample_batch(self, toxics, config, *, seed):
        return [self.sample(toxic, config, seed=seed) for toxic in toxics]

    def provenance(self, config):
        return {**config.as_dict(), "backend": self.backend}


class StubGenerator(PerPromptSampling):
    """Deterministic stand-in for a model: fixed texts per call (duplicates included on purpose)."""

    def __init__(self, texts=("be kind please", "be kind please", "please be nice", "kindly stop")):
        self.texts = texts
        self.calls = 0

    def sample(self, toxic, config, *, seed):
        from training.ml.generate import SampledRewrite

        self.calls += 1
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(self.texts)][
            : max(config.num_candidates, len(self.texts))
        ]


@pytest.fixture
def stub_generator():
    return StubGenerator()


@pytest.fixture
def filled_pool(tiny_version, prompts, stub_generator):
    """Ready items for the tiny version, generated with the stub (no model load)."""
    from training.generation import refill_pool

    refill_pool(tiny_version.pk, target=len(prompts), generator_factory=lambda path: stub_generator)
    return tiny_version


def run_jobs(*queue_names: str) -> None:
    """Run every queued job to completion with a real RQ burst worker on the real Redis."""
    import django_rq
    from rq import SimpleWorker

    queues = [django_rq.get_queue(name) for name in queue_names]
    SimpleWorker(queues, connection=queues[0].connection).work(burst=True)


def shared_model_store() -> Path:
    """A model store kept between test runs (var/test-models) so the bundled model converts once."""
    store = Path(__file__).resolve().parents[1] / "var" / "test-models"
    store.mkdir(parents=True, exist_ok=True)
    return store


def blocked_in_redis(limit_seconds: float = 10) -> bool:
    """True once some client is blocked in BLPOP (a long-polling request), polled for up to ``limit_seconds``.

    Blocked now (flag ``b``), not merely last ran BLPOP: an idle pooled connection of an earlier wait
    still shows ``cmd=blpop``.
    """
    import time

    from core.queues import get_connection

    redis = get_connection()
    db = str(redis.connection_pool.connection_kwargs.get("db", 0))  # the tests' own database: workers elsewhere block too
    end = time.monotonic() + limit_seconds
    while time.monotonic() < end:
        if any(c.get("cmd") == "blpop" and "b" in c.get("flags", "") and c.get("db") == db for c in redis.client_list()):
            return True
        time.sleep(0.05)
    return False


def waiting_request(client, url: str):
    """Send ``GET url`` from another thread and return once it is blocked in its long poll; calling the
    returned function joins it and gives ``(response, seconds it took)``."""
    import threading
    import time

    from django.db import connection

    answers: list = []

    def wait() -> None:
        try:
            started = time.monotonic()
            answers.append((client.get(url), time.monotonic() - started))
        finally:
            connection.close()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert blocked_in_redis(), "the request never started waiting"

    def answer():
        waiter.join(30)
        assert not waiter.is_alive(), "the request is still waiting"
        return answers[0]

    return answer
