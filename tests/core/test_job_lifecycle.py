"""One job lifecycle for training runs, evaluations and arena generations: enqueue failures recorded,
dead workers reaped, guarded transitions, retry."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from arena.models import ARENA_JOBS, Comparison
from core import jobs
from evaluation.models import EVALUATION_JOBS, Evaluation
from training import services
from training.executor import NoLongerRunning, _register
from training.models import TRAINING_JOBS, TrainingRun

DEAD_PID = 2**22 + 12345  # above the kernel's default pid_max: never a live process


@pytest.fixture
def redis_down(settings):
    """RQ pointed at a port where nothing listens, as when Redis is stopped; ``redis_down()`` brings it back."""
    working = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**queue, "URL": "redis://127.0.0.1:1/0"} for name, queue in working.items()}

    def bring_back() -> None:
        settings.RQ_QUEUES = working

    yield bring_back
    bring_back()


def running_row(lifecycle: jobs.Lifecycle, pk: int, *, pid: int = DEAD_PID, beat_seconds_ago: float = 0) -> None:
    lifecycle.model.objects.filter(pk=pk).update(
        status=lifecycle.running,
        worker_pid=pid,
        worker_host=__import__("socket").gethostname(),
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=beat_seconds_ago),
    )


def test_every_job_kind_is_registered_with_the_reaper():
    assert {"training.trainingrun", "evaluation.evaluation", "arena.comparison"} <= set(jobs.LIFECYCLES)


def test_every_job_kind_answers_which_rows_are_unfinished(tiny_version):
    """One queryset on the shared base: arena's "generating" is its running, a cancelled run is finished."""
    for status in ("queued", "running", "succeeded", "failed"):
        Evaluation.objects.create(version=tiny_version, sample_size=1, status=status)
    assert sorted(tiny_version.evaluations.unfinished().values_list("status", flat=True)) == ["queued", "running"]
    assert sorted(Evaluation.objects.unfinished_or_succeeded().values_list("status", flat=True)) == ["queued", "running", "succeeded"]
    for status in ("queued", "generating", "ready", "failed"):
        Comparison.objects.create(name=status, status=status)
    assert sorted(Comparison.objects.unfinished().values_list("status", flat=True)) == ["generating", "queued"]
    assert Comparison.objects.succeeded().get().status == "ready" == ARENA_JOBS.succeeded
    assert Comparison.objects.get(status="generating").is_generating and ARENA_JOBS.running == "generating"
    run = TrainingRun.objects.create(kind="sft", parent=tiny_version, output_directory="x", status="cancelled")
    assert run.is_finished and not TrainingRun.objects.unfinished().exists()


def test_failed_enqueue_is_recorded_on_the_run_and_it_can_be_retried(
    django_capture_on_commit_callbacks, staff, tiny_version, prompts, redis_down, settings
):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.start_training_run(kind="sft", parent=tiny_version, user=staff, hyperparameters={"max_steps": 1})
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("Could not queue the job: Cannot reach Redis")
    with pytest.raises(Exception, match="Only a failed run can be retried"):
        services.retry_training_run(run=TrainingRun.objects.create(kind="sft", parent=tiny_version, output_directory="x"))
    redis_down()  # Redis is back
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_training_run(run=run)
    run.refresh_from_db()
    assert run.status == "queued" and run.error == ""
    import django_rq

    assert django_rq.get_queue("training").fetch_job(run.rq_job_id) is not None


@pytest.mark.parametrize("kind", ["evaluation", "arena"])
def test_evaluations_and_arena_generations_killed_midway_are_reaped_and_retryable(kind, tiny_version, staff):
    if kind == "evaluation":
        lifecycle, row = EVALUATION_JOBS, Evaluation.objects.create(version=tiny_version, sample_size=5)
    else:
        lifecycle, row = ARENA_JOBS, Comparison.objects.create(name="a/b", matches_wanted=2)
    running_row(lifecycle, row.pk)
    assert jobs.reap_all() == {lifecycle.name: [row.pk]}
    row.refresh_from_db()
    assert row.status == lifecycle.failed and "worker running this job died" in row.error
    assert lifecycle.retry(row.pk)
    row.refresh_from_db()
    assert row.status == lifecycle.queued and row.worker_pid is None


def test_a_live_job_with_a_recent_heartbeat_is_not_reaped_but_a_silent_one_is(tiny_version, settings):
    import os

    settings.JOB_HEARTBEAT_TIMEOUT = 60
    live = Evaluation.objects.create(version=tiny_version, sample_size=5)
    silent = Evaluation.objects.create(version=tiny_version, sample_size=5)
    running_row(EVALUATION_JOBS, live.pk, pid=os.getpid(), beat_seconds_ago=5)
    running_row(EVALUATION_JOBS, silent.pk, pid=os.getpid(), beat_seconds_ago=600)
    assert EVALUATION_JOBS.reap() == [silent.pk]


def test_heartbeat_thread_keeps_a_running_row_alive(transactional_db, tiny_version):
    evaluation = Evaluation.objects.create(version=tiny_version, sample_size=5)
    running_row(EVALUATION_JOBS, evaluation.pk, beat_seconds_ago=3600)
    lifecycle = jobs.Lifecycle(Evaluation, queue="evaluation", job="x", heartbeat_every_s=0.05, name="probe")
    try:
        with lifecycle.heartbeat(evaluation.pk):
            time.sleep(0.5)
    finally:
        jobs.LIFECYCLES.pop("probe")
    evaluation.refresh_from_db()
    assert (timezone.now() - evaluation.heartbeat_at).total_seconds() < 5


def test_a_reaped_run_never_comes_back_as_succeeded(staff, tiny_version, prompts, settings):
    run = services.start_training_run(kind="sft", parent=tiny_version, user=staff, hyperparameters={"max_steps": 1}, enqueue=False)
    assert TRAINING_JOBS.claim(run.pk)
    TRAINING_JOBS.fail(run.pk, "The worker running this job died")
    output = Path(settings.MODEL_STORE) / run.output_directory
    with pytest.raises(NoLongerRunning):
        _register(run, output, result=None)
    run.refresh_from_db()
    assert run.status == "failed" and run.result_version is None
    assert not TRAINING_JOBS.finish(run.pk)  # a late "succeeded" is refused by the status guard


def test_reap_jobs_command_reports_what_it_reaped(tiny_version, capsys):
    evaluation = Evaluation.objects.create(version=tiny_version, sample_size=5)
    running_row(EVALUATION_JOBS, evaluation.pk)
    call_command("reap_jobs")
    assert f"reaped evaluation.evaluation: {evaluation.pk}" in capsys.readouterr().out
