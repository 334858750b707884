"""Is this deployment able to serve? Each check answers ok or why not; ``/health/`` shows them all.

Cheap enough for a load balancer to call every few seconds: no model is loaded (the active
version's directory is only checked for a config and weights), each check catches its own errors.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection
from rq import Worker

from training.ml.checkpoints import is_checkpoint
from training.models import ModelVersion


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.extra}


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return Check(True, f"{connection.vendor} answers")


def check_redis() -> Check:
    django_rq.get_connection("generation").ping()
    return Check(True, "Redis answers")


def check_workers() -> Check:
    """At least one live RQ worker listens on every queue in ``RQ_QUEUES``."""
    counts = {name: len(Worker.all(queue=django_rq.get_queue(name))) for name in settings.RQ_QUEUES}
    idle = sorted(name for name, count in counts.items() if count == 0)
    detail = f"no worker on queue(s): {', '.join(idle)}" if idle else "every queue has a worker"
    return Check(not idle, detail, {"queues": counts})


def check_model_store() -> Check:
    store = Path(settings.MODEL_STORE)
    probe = store / f".health-{uuid.uuid4().hex}"
    probe.write_bytes(b"")
    probe.unlink()
    return Check(True, f"{store} is writable")


def check_active_version() -> Check:
    """The active version's directory exists and holds a config and weights (not loaded here)."""
    version = ModelVersion.objects.active()
    if version is None:
        return Check(False, "no active model version")
    if not version.path.is_dir():
        return Check(False, f"{version.name}: directory {version.path} is missing", {"version": version.name})
    if not is_checkpoint(version.path):
        return Check(False, f"{version.name}: {version.path} lacks config.json or *.safetensors", {"version": version.name})
    return Check(True, f"{version.name} at {version.path}", {"version": version.name})


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "model_store": check_model_store,
    "active_version": check_active_version,
}


@dataclass(frozen=True)
class HealthReport:
    checks: dict[str, Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "fail",
            "failed": self.failed,
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def run_check(check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure instead of raising
        return Check(False, f"{type(exc).__name__}: {exc}")


def check_health() -> HealthReport:
    """Every check, each isolated from the others' failures (a dead database still reports Redis)."""
    report = HealthReport({name: run_check(check) for name, check in CHECKS.items()})
    if not report.checks["database"].ok:
        connection.close()  # do not keep a broken connection for the next request
    return report

