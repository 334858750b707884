"""RQ entry point for evaluation (queue ``evaluation``): takes an id, the row records the outcome."""
from __future__ import annotations

from training.ml.device import batch_threads, limit_cpu_threads, take_thread_share

from .judges import run_judge_training
from .services import run_evaluation


def evaluate_version(evaluation_id: int) -> str:
    take_thread_share(batch_threads())  # half the cores: refills and training come first
    return run_evaluation(evaluation_id).status


def train_judge(training_id: int) -> str:
    limit_cpu_threads()
    return run_judge_training(training_id).status
