"""One lifecycle for every job row — training runs, evaluations, arena generations: enqueue (a failure
is recorded on the row), claim, heartbeat from a thread, finish or fail behind a status guard, reap
rows whose worker died, retry.

The row owns the job's truth. Every transition is a conditional UPDATE on the expected status, so a
duplicated job does nothing, and a worker that was reaped (or cancelled) can never come back and
overwrite the newer state with "succeeded".
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback as tb
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from django.db import DatabaseError, close_old_connections, models
from django.utils import timezone

from . import queues

logger = logging.getLogger(__name__)


class JobRowQuerySet(models.QuerySet):
    """Job rows by where they stand in their lifecycle, with the status names of their model."""

    def unfinished(self) -> "JobRowQuerySet":
        """Queued or running: the job may still change something."""
        return self.filter(status__in=self.model.unfinished_statuses())

    def succeeded(self) -> "JobRowQuerySet":
        return self.filter(status=self.model.SUCCEEDED_STATUS)

    def unfinished_or_succeeded(self) -> "JobRowQuerySet":
        """Every job that did not fail (or get cancelled): done, or still on its way to done."""
        return self.filter(status__in=(*self.model.unfinished_statuses(), self.model.SUCCEEDED_STATUS))


class JobRow(models.Model):
    """The fields every job row shares; each model keeps its own ``status`` choices and names its
    lifecycle's statuses here when they differ from the usual ones (arena's "generating")."""

    QUEUED_STATUS: ClassVar[str] = "queued"
    RUNNING_STATUS: ClassVar[str] = "running"
    SUCCEEDED_STATUS: ClassVar[str] = "succeeded"
    FAILED_STATUS: ClassVar[str] = "failed"

    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobRowQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def unfinished_statuses(cls) -> tuple[str, str]:
        return (cls.QUEUED_STATUS, cls.RUNNING_STATUS)

    @property
    def is_finished(self) -> bool:
        return self.status not in self.unfinished_statuses()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Lifecycle:
    """The transitions of one job model, between the status names it declares (``JobRow.*_STATUS``)."""

    model: type[JobRow]
    queue: str
    job: str  # dotted path of the RQ entry point, called with the row's id
    heartbeat_timeout: Callable[[], int] = lambda: 300
    on_reaped: Callable[[Any], None] | None = None  # e.g. remove partial output
    job_timeout: Callable[[], int | None] = lambda: None
    heartbeat_every_s: float = 15.0
    name: str = field(default="")

    def __post_init__(self) -> None:
        self.name = self.name or self.model._meta.label_lower
        LIFECYCLES[self.name] = self

    # The status names, as the model declares them (``JobRow.*_STATUS``).
    queued = property(lambda self: self.model.QUEUED_STATUS)
    running = property(lambda self: self.model.RUNNING_STATUS)
    succeeded = property(lambda self: self.model.SUCCEEDED_STATUS)
    failed = property(lambda self: self.model.FAILED_STATUS)

    # --- enqueue ---------------------------------------------------------------------------------

    def enqueue_on_commit(self, pk: int, *, job_timeout: int | None = None) -> None:
        """Queue the row's job once the transaction commits; if Redis refuses, the row says so (FAILED,
        retryable) instead of staying QUEUED forever."""
        job_id = f"{self.name.replace('.', '-')}-{pk}"
        self.model.objects.filter(pk=pk).update(rq_job_id=job_id)
        queues.enqueue_on_commit(
            self.queue,
            self.job,
            pk,
            job_id=job_id,
            job_timeout=job_timeout or self.job_timeout(),
            on_failure=lambda exc: self.fail(pk, f"Could not queue the job: {exc} Retry it once Redis is back.", expected=self.queued),
        )

    # --- the worker's side -----------------------------------------------------------------------

    def claim(self, pk: int, **fields: Any) -> bool:
        """QUEUED → RUNNING, atomically; False when another worker, a cancel or the reaper got there first."""
        now = timezone.now()
        return bool(
            self.model.objects.filter(pk=pk, status=self.queued).update(
                status=self.running,
                started_at=now,
                heartbeat_at=now,
                worker_pid=os.getpid(),
                worker_host=socket.gethostname(),
                **fields,
            )
        )

    def beat(self, pk: int) -> bool:
        """Record that the worker is alive; False once the row left RUNNING (reaped or cancelled)."""
        return bool(self.model.objects.filter(pk=pk, status=self.running).update(heartbeat_at=timezone.now()))

    @contextmanager
    def heartbeat(self, pk: int) -> Iterator[None]:
        """Beat from a background thread while the body runs: loading, tokenising and saving send no
        progress, and a live job must never look dead to the reaper."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.heartbeat_every_s):
                try:
                    self.beat(pk)
                except DatabaseError:
                    logger.warning("heartbeat of %s %s failed", self.name, pk, exc_info=True)
                finally:
                    close_old_connections()

        thread = threading.Thread(target=loop, name=f"heartbeat-{self.name}-{pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def finish(self, pk: int, *, status: str | None = None, **fields: Any) -> bool:
        """RUNNING → ``status`` (default: succeeded); False if the row is no longer RUNNING."""
        return bool(
            self.model.objects.filter(pk=pk, status=self.running).update(
                status=status or self.succeeded, finished_at=timezone.now(), **fields
            )
        )

    def fail(self, pk: int, error: str | BaseException, *, traceback: str = "", expected: str | None = None) -> bool:
        """``expected`` (default RUNNING) → FAILED with the message and traceback; False if the row moved on."""
        if isinstance(error, BaseException):
            traceback = traceback or "".join(tb.format_exception(error))
            error = f"{type(error).__name__}: {error}"
        return bool(
            self.model.objects.filter(pk=pk, status=expected or self.running).update(
                status=self.failed, error=str(error), traceback=traceback[-20000:], finished_at=timezone.now()
            )
        )

    # --- supervision -----------------------------------------------------------------------------

    def dead_rows(self) -> list[Any]:
        """RUNNING rows whose worker process on this host is gone, or whose heartbeat went silent."""
        host = socket.gethostname()
        stale_before = timezone.now() - timedelta(seconds=self.heartbeat_timeout())
        dead = []
        for row in self.model.objects.filter(status=self.running):
            same_host_dead = row.worker_host == host and row.worker_pid and not process_alive(row.worker_pid)
            silent = row.heartbeat_at is not None and row.heartbeat_at < stale_before
            if same_host_dead or silent:
                dead.append(row)
        return dead

    def reap(self) -> list[int]:
        """Mark dead RUNNING rows FAILED (never re-run them) and clean up after them; returns their ids."""
        reaped = []
        for row in self.dead_rows():
            error = "The worker running this job died (killed or crashed); partial output was removed."
            if self.fail(row.pk, error):
                if self.on_reaped is not None:
                    self.on_reaped(row)
                reaped.append(row.pk)
        if reaped:
            logger.warning("reaped dead %s jobs: %s", self.name, reaped)
        return reaped

    def retry(self, pk: int) -> bool:
        """FAILED → QUEUED and queue it again; False if the row is not failed."""
        updated = self.model.objects.filter(pk=pk, status=self.failed).update(
            status=self.queued, error="", traceback="", started_at=None, heartbeat_at=None, finished_at=None,
            worker_pid=None, worker_host="",
        )
        if updated:
            self.enqueue_on_commit(pk)
        return bool(updated)


LIFECYCLES: dict[str, Lifecycle] = {}


def reap_all() -> dict[str, list[int]]:
    """Reap every registered job kind; what the scheduled reaper and each job start call."""
    return {name: ids for name, lifecycle in LIFECYCLES.items() if (ids := lifecycle.reap())}
