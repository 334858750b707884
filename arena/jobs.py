"""RQ entry points for the arena: short adapters that take ids (queue ``evaluation``, with the other batch jobs)."""
from __future__ import annotations

from training.ml.device import batch_threads, generation_threads, limit_cpu_threads, set_generation_budget

from . import services


def generate_matches(comparison_id: int) -> int:
    """Sample the matches of comparison ``comparison_id``; its row records status and errors."""
    set_generation_budget(batch_threads())  # half the cores: refills and training come first
    limit_cpu_threads(generation_threads())
    return services.generate_matches(comparison_id)
