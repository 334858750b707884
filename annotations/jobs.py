"""RQ entry points for annotation: short adapters that take ids and call the pool service."""
from __future__ import annotations

from core import queues
from training.ml.device import limit_cpu_threads

from . import pool


def refill_pool(version_id: int) -> int:
    """Fill the ready pool of ``version_id`` (queue ``generation``); returns items created."""
    limit_cpu_threads()
    try:
        return pool.refill_pool(version_id)
    finally:
        queues.release(f"refill:{version_id}")
