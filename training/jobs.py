"""RQ entry points for training: short adapters that take ids (queues ``training`` and ``generation``)."""
from __future__ import annotations

from core import queues
from training.ml.device import available_cores, limit_cpu_threads, split_cpu_threads, take_thread_share

from . import generation
from .executor import execute_run


def run_training(run_id: int) -> str:
    """Train run ``run_id``; the row records the outcome, the return value is for the RQ dashboard.

    Takes ``cores - 1`` threads (``split_cpu_threads``): generation keeps one core for annotators.
    """
    limit_cpu_threads(split_cpu_threads(available_cores(), training_running=True).training)
    return execute_run(run_id).status


def refill_pool(version_id: int, slot: int = 0) -> int:
    """Fill the ready pool of ``version_id`` (queue ``generation``); returns items created.

    The thread share is decided now, from whether a training run is RUNNING (every core if not, else 1).
    """
    take_thread_share(generation.generation_thread_budget())
    try:
        return generation.refill_pool(version_id)
    finally:
        queues.release(f"refill:{version_id}:{slot}")
