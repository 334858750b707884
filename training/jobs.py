"""RQ entry points for training: short adapters that take ids (queue ``training``)."""
from __future__ import annotations

from training.ml.device import limit_cpu_threads

from .executor import execute_run


def run_training(run_id: int) -> str:
    """Train run ``run_id``; the row records the outcome, the return value is for the RQ dashboard."""
    limit_cpu_threads()
    return execute_run(run_id).status
