"""split_cpu_threads: generation and training never ask for more threads than there are cores."""
from __future__ import annotations

import pytest

from training.ml import device
from training.ml.device import CpuSplit, split_cpu_threads


@pytest.mark.parametrize("cores", [1, 2, 4, 16])
def test_generation_gets_every_core_when_no_training_runs(cores):
    assert split_cpu_threads(cores, training_running=False).generation == cores


@pytest.mark.parametrize("cores, expected", [(2, CpuSplit(training=1, generation=1)), (8, CpuSplit(training=7, generation=1))])
def test_training_and_generation_share_the_cores_while_a_run_is_running(cores, expected):
    split = split_cpu_threads(cores, training_running=True)
    assert split == expected and split.training + split.generation == cores


def test_one_core_gives_each_one_thread():
    assert split_cpu_threads(1, training_running=True) == CpuSplit(training=1, generation=1)


def test_the_job_budget_applies_unless_an_operator_set_threads(monkeypatch):
    monkeypatch.delenv("GENERATION_THREADS", raising=False)
    monkeypatch.delenv("TORCH_NUM_THREADS", raising=False)
    try:
        device.set_generation_budget(1)
        assert device.generation_threads() == 1
        monkeypatch.setenv("GENERATION_THREADS", "3")
        assert device.generation_threads() == 3
    finally:
        device.set_generation_budget(None)


def test_batch_jobs_take_half_the_cores(monkeypatch):
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    assert device.batch_threads() == 1
    monkeypatch.setattr(device, "available_cores", lambda: 8)
    assert device.batch_threads() == 4
