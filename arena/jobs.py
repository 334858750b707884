"""RQ entry points for the arena: short adapters that take ids (queue ``evaluation``, with the other batch jobs)."""
from __future__ import annotations

from training.ml.device import batch_threads, take_thread_share

from . import services


def generate_matches(comparison_id: int) -> int:
    """Sample the matches of comparison ``comparison_id``; its row records status and errors."""
    take_thread_share(batch_threads())  # half the cores: refills and training come first
    return services.generate_matches(comparison_id)
