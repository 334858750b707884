"""RQ entry point for evaluation (queue ``evaluation``): takes an id, the row records the outcome."""
from __future__ import annotations

from training.ml.device import limit_cpu_threads

from .judges import run_judge_training
from .services import run_evaluation


def evaluate_version(evaluation_id: int) -> str:
    limit_cpu_threads()
    return run_evaluation(evaluation_id).status


def train_judge(training_id: int) -> str:
    limit_cpu_threads()
    return run_judge_training(training_id).status
