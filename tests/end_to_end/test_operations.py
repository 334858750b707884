"""/health/ for load balancers and /metrics for Prometheus, against the real database and Redis."""
from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Worker

from annotations import services as annotation_services
from annotations.models import PreferencePair
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def workers_on_every_queue(settings):
    """Live worker registrations in Redis, as ``rqworker`` processes leave them."""
    workers = []
    for name in settings.RQ_QUEUES:
        queue = django_rq.get_queue(name)
        worker = Worker([queue], connection=queue.connection)
        worker.register_birth()
        workers.append(worker)
    yield workers
    for worker in workers:
        worker.register_death()


def samples(body: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_health_is_ok_when_everything_is_up(client, tiny_version, workers_on_every_queue):
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"database", "redis", "workers", "model_store", "active_version"}
    assert body["checks"]["workers"]["queues"] == {"generation": 1, "training": 1, "evaluation": 1}
    assert body["checks"]["active_version"]["version"] == "tiny"


def test_health_names_missing_workers_and_version(client, db):
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["failed"] == ["workers", "active_version"]
    assert body["checks"]["workers"]["detail"] == "no worker on queue(s): evaluation, generation, training"
    assert body["checks"]["active_version"]["detail"] == "no active model version"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"] and body["checks"]["model_store"]["ok"]


def test_health_fails_when_the_active_checkpoint_lacks_weights(client, settings, tmp_path, workers_on_every_queue):
    settings.MODEL_STORE = tmp_path
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    ModelVersion.objects.create(name="broken", kind="base", directory="broken", is_active=True)
    response = client.get("/health/")
    assert response.status_code == 503 and response.json()["failed"] == ["active_version"]
    assert "lacks config.json or *.safetensors" in response.json()["checks"]["active_version"]["detail"]


def test_health_fails_on_a_read_only_model_store(client, settings, tmp_path, tiny_version, workers_on_every_queue):
    settings.MODEL_STORE = tmp_path / "not-there"
    response = client.get("/health/")
    assert response.status_code == 503
    assert set(response.json()["failed"]) == {"model_store", "active_version"}


def test_health_reports_redis_down_without_raising(client, settings, tiny_version):
    settings.RQ_QUEUES = {name: {**queue, "URL": "redis://127.0.0.1:1/0"} for name, queue in settings.RQ_QUEUES.items()}
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis", "workers"]
    assert body["checks"]["redis"]["detail"].startswith("ConnectionError")
    assert body["checks"]["database"]["ok"]


def test_metrics_is_for_staff_or_the_token(client, api, annotator, staff, settings):
    assert client.get("/metrics").status_code == 401
    client.force_login(annotator)
    assert client.get("/metrics").status_code == 403
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    client.logout()
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_metrics_count_queue_pool_judgements_pairs_and_durations(client, settings, annotator, filled_pool):
    settings.METRICS_TOKEN = "scrape-secret"
    for _ in range(2):
        shown = annotation_services.next_assignment(user=annotator)
        annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, skip_reason="unclear")
    now = timezone.now()
    trained = ModelVersion.objects.create(name="dpo-1", kind="dpo", directory="dpo-1", parent=filled_pool)
    TrainingRun.objects.create(
        kind="dpo", status="succeeded", parent=filled_pool, output_directory="dpo-1", result_version=trained,
        started_at=now - timedelta(seconds=120), finished_at=now,
    )
    # A plain rq Queue: django-rq's own defers enqueueing to the commit this test never makes.
    Queue("training", connection=django_rq.get_connection("training")).enqueue("training.jobs.run_training", 999)

    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200
    found = samples(response.content.decode())
    assert found[("rq_jobs", (("queue", "training"), ("status", "queued")))] == 1
    assert found[("rq_jobs", (("queue", "generation"), ("status", "queued")))] == 0
    assert found[("detox_active_version", (("version", "tiny"),))] == 1
    assert found[("detox_pool_ready_items", (("version", "tiny"),))] == 6  # 8 items, 2 chosen; a skipped item stays in the pool
    assert found[("detox_judgements", (("kind", "choice"),))] == 2
    assert found[("detox_judgements", (("kind", "skip"),))] == 1
    pending = PreferencePair.objects.pending().count()
    assert pending > 0 and found[("detox_preference_pairs", (("status", "pending"),))] == pending
    assert found[("detox_preference_pairs", (("status", "approved"),))] == 0
    assert found[("detox_training_runs", (("status", "succeeded"),))] == 1
    assert found[("detox_training_run_duration_seconds_count", (("kind", "dpo"),))] == 1
    assert found[("detox_training_run_duration_seconds_bucket", (("kind", "dpo"), ("le", "60")))] == 0
    assert found[("detox_training_run_duration_seconds_bucket", (("kind", "dpo"), ("le", "300")))] == 1
    assert found[("detox_training_run_last_duration_seconds", (("kind", "dpo"),))] == pytest.approx(120)


def test_health_command_exits_non_zero_naming_the_failures(tiny_version, capsys):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="unhealthy: workers"):
        call_command("health")
    assert '"active_version"' in capsys.readouterr().out
