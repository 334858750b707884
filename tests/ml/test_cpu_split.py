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


@pytest.mark.parametrize("setting, budget, expected", [(None, 2, 1), ("0", 2, 2), ("0", 1, 1), ("4", 2, 2), ("2", 16, 2)])
def test_ctranslate2_takes_one_thread_unless_told_and_never_more_than_the_budget(monkeypatch, setting, budget, expected):
    """One intra-op thread supplied more items/s than two on 2 cores; the job's share still caps it."""
    from training.ml.generate import ct2_intra_threads

    if setting is None:
        monkeypatch.delenv("CT2_INTRA_THREADS", raising=False)
    else:
        monkeypatch.setenv("CT2_INTRA_THREADS", setting)
    assert ct2_intra_threads(budget) == expected
