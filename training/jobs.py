"""RQ entry points for training: short adapters that take ids (queues ``training`` and ``generation``)."""
from __future__ import annotations

from core import queues
from training.ml.device import limit_cpu_threads

from . import generation
from .executor import execute_run


def run_training(run_id: int) -> str:
    """Train run ``run_id``; the row records the outcome, the return value is for the RQ dashboard."""
    limit_cpu_threads()
    return execute_run(run_id).status


def refill_pool(version_id: int, slot: int = 0) -> int:
    """Fill the ready pool of ``version_id`` (queue ``generation``); returns items created."""
    limit_cpu_threads()
    try:
        return generation.refill_pool(version_id)
    finally:
        queues.release(f"refill:{version_id}:{slot}")
